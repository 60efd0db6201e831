/**
 * Test harness for the delivery stage: a real PolicyEngine loaded from a
 * policy text, real LocalDisk spools in a temp dir, a capturing log
 * dispatcher and a QueueManager wired to them. Messages are built here and
 * spooled the way reception does, then handed over with `insert`.
 *
 * Loopback only: the policy must point `kumo.dns.configure_resolver` at
 * tests/support/dns_server.ts.
 *
 * @module
 */

import { PolicyEngine } from "../../src/policy/engine.ts";
import { buildCatalogue } from "../../src/policy/catalogue.ts";
import { newServerConfig } from "../../src/policy/server_config.ts";
import { offlineResolver } from "./offline_resolver.ts";
import { openSpool } from "../../src/spool/mod.ts";
import type { SpoolPair } from "../../src/spool/spool.ts";
import { LogDispatcher } from "../../src/log/local_logger.ts";
import type { LogRecord } from "../../src/log/record.ts";
import { Message } from "../../src/message/message.ts";
import { QueueManager } from "../../src/queue/queue_manager.ts";

/** A LogDispatcher that keeps every record in memory. */
export class CaptureLogs extends LogDispatcher {
  readonly records: LogRecord[] = [];
  override submit(record: LogRecord): void {
    this.records.push(record);
  }
  /** Records of one type. */
  of(type: string): LogRecord[] {
    return this.records.filter((r) => r.type === type);
  }
  /** Resolve once `n` records of `type` exist; reject after `timeoutMs`. */
  async waitFor(type: string, n: number, timeoutMs = 10_000): Promise<LogRecord[]> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const got = this.of(type);
      if (got.length >= n) return got;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(
      `timed out waiting for ${n} ${type} records; have ${
        JSON.stringify(this.records.map((r) => [r.type, r.response.code, r.response.content]))
      }`,
    );
  }
}

/** A running delivery stage. */
export interface Harness extends AsyncDisposable {
  engine: PolicyEngine;
  spools: SpoolPair;
  logs: CaptureLogs;
  qm: QueueManager;
  dir: string;
  /** Build, spool and insert a message. */
  inject(sender: string, rcpt: string | string[], meta?: Record<string, unknown>): Promise<Message>;
  /** Build and spool only (no insert). */
  spoolOnly(sender: string, rcpt: string | string[]): Promise<Message>;
  /** Stop the queue manager (spools stay open until dispose). */
  stopQueues(): Promise<void>;
  /** A fresh QueueManager over the same engine/spools (restart). */
  restart(): Promise<QueueManager>;
  /** Number of records in the meta spool. */
  spooled(): Promise<number>;
}

const enc = new TextEncoder();

/** Start the stage with `policy` (Lua source); `dir` reuses spool dirs. */
export async function startHarness(policy: string, dir?: string): Promise<Harness> {
  dir ??= await Deno.makeTempDir({ prefix: "kumo-deliver-" });
  const path = `${dir}/policy.lua`;
  await Deno.writeTextFile(path, policy);
  const cfg = newServerConfig();
  const resolver = offlineResolver();
  // deno-lint-ignore prefer-const
  let engine: PolicyEngine | undefined;
  engine = await PolicyEngine.load({
    policyPath: path,
    version: "test",
    catalogue: buildCatalogue(() => engine!, cfg, resolver),
  });
  await engine.runInit();
  const spools: SpoolPair = {
    data: await openSpool({ name: "data", path: `${dir}/data` }),
    meta: await openSpool({ name: "meta", path: `${dir}/meta` }),
  };
  const logs = new CaptureLogs();
  let qm = new QueueManager({ engine, resolver, spools, logs, hostname: "host.test" });
  const eng = engine;
  let n = 0;
  const spoolOnly = async (sender: string, rcpt: string | string[]) => {
    const msg = new Message({
      sender,
      recipients: Array.isArray(rcpt) ? rcpt : [rcpt],
      data: enc.encode(`Subject: test ${n++}\r\n\r\n.dot line\r\nbody\r\n`),
      meta: { reception_protocol: "ESMTP" },
    });
    await spools.data.store(msg.id, msg.data!, { sync: false });
    await spools.meta.store(msg.id, msg.metaBytes(), { sync: false });
    msg.metaDirty = false;
    msg.dataDirty = false;
    return msg;
  };
  let stopped = false;
  return {
    engine: eng,
    spools,
    logs,
    get qm() {
      return qm;
    },
    dir,
    spoolOnly,
    async inject(sender, rcpt, meta = {}) {
      const msg = await spoolOnly(sender, rcpt);
      for (const [k, v] of Object.entries(meta)) msg.setMeta(k, v);
      await qm.insert(msg);
      return msg;
    },
    async stopQueues() {
      if (!stopped) await qm.shutdown();
      stopped = true;
    },
    async restart() {
      if (!stopped) await qm.shutdown();
      qm = new QueueManager({ engine: eng, resolver, spools, logs, hostname: "host.test" });
      stopped = false;
      await qm.startSpoolIn();
      return qm;
    },
    async spooled() {
      let c = 0;
      for await (const _ of spools.meta.enumerate()) c++;
      return c;
    },
    async [Symbol.asyncDispose]() {
      if (!stopped) await qm.shutdown();
      await spools.data.close();
      await spools.meta.close();
      eng.close();
      await Deno.remove(dir!, { recursive: true }).catch(() => {});
    },
  } as Harness;
}

/** Standard policy prelude: resolver at the test DNS server, queue/path config. */
export function policyText(opts: {
  dns: string;
  port: number;
  queue?: string;
  path?: string;
  extra?: string;
}): string {
  return `
local kumo = require 'kumo'
kumo.dns.configure_resolver { name_servers = { '${opts.dns}' } }
kumo.on('init', function() end)
kumo.on('get_queue_config', function(domain, tenant, campaign, routing_domain)
  return kumo.make_queue_config { retry_interval = '1s', ${opts.queue ?? ""} }
end)
kumo.on('get_egress_path_config', function(domain, source, site)
  return kumo.make_egress_path {
    smtp_port = ${opts.port}, prohibited_hosts = {}, enable_tls = 'Disabled',
    connect_timeout = '2s', ${opts.path ?? ""}
  }
end)
${opts.extra ?? ""}
`;
}
