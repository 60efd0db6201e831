/**
 * Test support for the HTTP scenarios: the real program with an ESMTP and an
 * HTTP listener, a loopback DNS server and an SMTP sink, so injected mail
 * can be followed to the sink. Loopback only; every wait is bounded.
 *
 * @module
 */

import { type DnsServer, startDnsServer } from "./dns_server.ts";
import { type SmtpSink, type SmtpSinkOptions, startSmtpSink } from "./smtp_sink.ts";
import { type KumoProcess, startKumo } from "./kumo_process.ts";

/** A running program with its peers. */
export interface HttpRig extends AsyncDisposable {
  kumo: KumoProcess;
  dns: DnsServer;
  sink: SmtpSink;
  dir: string;
  /** `http://127.0.0.1:PORT` of the HTTP listener (`https://` with `use_tls`). */
  base: string;
  /** The policy text of the running program. */
  policy: string;
  /**
   * Start the program again in the same directory (spools and logs kept),
   * optionally with changed options; the previous process must have exited
   * (`kumo.kill()` or `kumo.stop()`).
   */
  restart(over?: Partial<HttpRigOptions>): Promise<void>;
}

/** Options of {@link startHttpRig}. */
export interface HttpRigOptions {
  /** Extra keys of `start_http_listener`. */
  httpExtra?: string;
  /** Extra Lua at top level. */
  extra?: string;
  /** Extra keys of the data spool's `define_spool`, e.g. `min_free_space = '100%'`. */
  spoolExtra?: string;
  /** Extra Lua inside `init`. */
  initExtra?: string;
  /** Replaces the default `get_queue_config` handler (`retry_interval = '1s'`). */
  queueConfig?: string;
  /** Extra keys of `make_egress_path`. */
  pathExtra?: string;
  /** The sink's reply hook (e.g. a 4xx for some recipients). */
  sinkReplies?: SmtpSinkOptions["replies"];
  /** The sink waits this long before each batch of replies. */
  sinkDelayMs?: number;
}

function rigPolicy(dir: string, dns: string, sinkPort: number, opts: HttpRigOptions): string {
  return `local kumo = require 'kumo'
kumo.on('init', function()
  kumo.dns.configure_resolver { name_servers = { '${dns}' } }
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'mx.test' }
  kumo.start_http_listener { listen = '127.0.0.1:0', hostname = 'http.test', ${
    opts.httpExtra ?? ""
  } }
  kumo.define_spool { name = 'data', path = '${dir}/spool/data', ${opts.spoolExtra ?? ""} }
  kumo.define_spool { name = 'meta', path = '${dir}/spool/meta' }
  kumo.configure_local_logs { log_dir = '${dir}/logs', meta = { '*' } }
  ${opts.initExtra ?? ""}
end)
${
    opts.queueConfig ??
      "kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1s' } end)"
  }
kumo.on('get_egress_path_config', function()
  return kumo.make_egress_path { smtp_port = ${sinkPort}, prohibited_hosts = {}, enable_tls = 'Disabled',
    ${opts.pathExtra ?? ""} }
end)
${opts.extra ?? ""}
`;
}

function httpBase(kumo: KumoProcess): string {
  const m = /(https?) listener on 127\.0\.0\.1:(\d+)/.exec(kumo.stderr());
  if (!m) throw new Error(`no http listener line in:\n${kumo.stderr()}`);
  return `${m[1]}://127.0.0.1:${m[2]}`;
}

/** Start DNS (dest.test → 127.0.0.1 sink), the sink and kumo with an HTTP listener. */
export async function startHttpRig(opts: HttpRigOptions = {}): Promise<HttpRig> {
  const dns = await startDnsServer({
    zones: {
      "dest.test": { MX: [{ pref: 10, host: "mx.dest.test" }] },
      "other.test": { MX: [{ pref: 10, host: "mx.dest.test" }] },
      "mx.dest.test": { A: ["127.0.0.1"] },
    },
  });
  const sink = await startSmtpSink({
    addresses: ["127.0.0.1"],
    replies: opts.sinkReplies,
    delayMs: opts.sinkDelayMs,
  });
  const dir = await Deno.makeTempDir({ prefix: "kumo-http-" });
  const policy = rigPolicy(dir, dns.address, sink.port, opts);
  let kumo: KumoProcess;
  try {
    kumo = await startKumo(dir, policy);
  } catch (e) {
    await sink.close();
    await dns[Symbol.asyncDispose]();
    throw e;
  }
  const rig: HttpRig = {
    kumo,
    dns,
    sink,
    dir,
    base: httpBase(kumo),
    policy,
    async restart(over = {}) {
      rig.policy = rigPolicy(dir, dns.address, sink.port, { ...opts, ...over });
      rig.kumo = await startKumo(dir, rig.policy);
      rig.base = httpBase(rig.kumo);
    },
    [Symbol.asyncDispose]: async () => {
      await rig.kumo.stop();
      await sink.close();
      await dns[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  return rig;
}

/** POST JSON and return status + text. */
export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: r.status, text: await r.text() };
}
