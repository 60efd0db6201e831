/**
 * Test support for the admin API scenarios: the real kumo program with an
 * HTTP listener on 127.0.0.1:0, a loopback DNS server for `*.test` routing
 * to an SMTP sink on 127.0.0.2, `retry_interval = '1s'` and
 * `prohibited_hosts = {}`; plus helpers to call the HTTP API the way kcli
 * does and to inject mail over SMTP.
 *
 * Loopback only; every wait is bounded.
 *
 * @module
 */

import http from "node:http";
import { startDnsServer } from "./dns_server.ts";
import { type SmtpSink, startSmtpSink } from "./smtp_sink.ts";
import { idsOf, type KumoProcess, RawSmtp, startKumo } from "./kumo_process.ts";

/** A running kumo with its peers. */
export interface AdminKumo extends AsyncDisposable {
  kumo: KumoProcess;
  sink: SmtpSink;
  dir: string;
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  /** `IP:PORT` of the loopback DNS server (dest.test, bounce.test → mx1.dest.test). */
  dnsAddress: string;
  /** One request with `Content-Type: application/json` (GETs carry `null`, like kcli). */
  call(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; text: string; json: () => unknown }>;
  /** Send one message over SMTP; returns its spool id. */
  send(rcpt: string): Promise<string>;
}

/** Start dns, sink and kumo. */
export async function startAdminKumo(): Promise<AdminKumo> {
  const dns = await startDnsServer({
    zones: {
      "dest.test": { MX: [{ pref: 10, host: "mx1.dest.test" }] },
      "bounce.test": { MX: [{ pref: 10, host: "mx1.dest.test" }] },
      "mx1.dest.test": { A: ["127.0.0.2"] },
    },
  });
  const sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  const dir = await Deno.makeTempDir({ prefix: "kumo-admin-" });
  const policy = `local kumo = require 'kumo'
kumo.on('init', function()
  kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'mx.test' }
  kumo.start_http_listener { listen = '127.0.0.1:0' }
  kumo.define_spool { name = 'data', path = '${dir}/spool/data' }
  kumo.define_spool { name = 'meta', path = '${dir}/spool/meta' }
  kumo.configure_local_logs { log_dir = '${dir}/logs' }
end)
kumo.on('get_queue_config', function()
  return kumo.make_queue_config { retry_interval = '1s' }
end)
kumo.on('get_egress_path_config', function()
  return kumo.make_egress_path {
    smtp_port = ${sink.port}, prohibited_hosts = {}, enable_tls = 'Disabled', connect_timeout = '2s',
  }
end)
`;
  let kumo: KumoProcess;
  try {
    kumo = await startKumo(dir, policy);
  } catch (e) {
    await sink[Symbol.asyncDispose]();
    await dns[Symbol.asyncDispose]();
    throw e;
  }
  const m = /http listener on 127\.0\.0\.1:(\d+)/.exec(kumo.stderr());
  const endpoint = `http://127.0.0.1:${m?.[1]}`;
  return {
    kumo,
    sink,
    dir,
    endpoint,
    dnsAddress: dns.address,
    async call(method, path, body = null) {
      const payload = new TextEncoder().encode(JSON.stringify(body));
      const { status, text } = await new Promise<{ status: number; text: string }>(
        (resolve, reject) => {
          const req = http.request(endpoint + path, {
            method,
            headers: {
              "content-type": "application/json",
              "content-length": String(payload.length),
            },
            timeout: 10_000,
          }, (res) => {
            let t = "";
            res.setEncoding("utf8");
            res.on("data", (d: string) => (t += d));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, text: t }));
          });
          req.on("timeout", () => req.destroy(new Error("timed out")));
          req.on("error", reject);
          req.end(payload);
        },
      );
      return { status, text, json: () => JSON.parse(text) };
    },
    async send(rcpt) {
      await using c = await RawSmtp.connect(kumo.port);
      await c.reply();
      await c.cmd("EHLO client.test");
      await c.cmd("MAIL FROM:<sender@src.test>");
      await c.cmd(`RCPT TO:<${rcpt}>`);
      await c.cmd("DATA");
      const r = await c.cmd(`Subject: admin test\r\n\r\nhello ${rcpt}\r\n.`);
      await c.cmd("QUIT");
      return idsOf(r)[0];
    },
    async [Symbol.asyncDispose]() {
      await kumo[Symbol.asyncDispose]();
      await sink[Symbol.asyncDispose]();
      await dns[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Poll `fn` until it returns true (bounded). */
export async function waitUntil(
  fn: () => boolean | Promise<boolean>,
  ms = 15_000,
  what = "condition",
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
