/**
 * Unit tests for runDataPhase(): what is left behind when the DATA phase
 * cannot acknowledge — a data_processing_timeout during a slow spool write,
 * a queue that cannot be resolved, an insert that fails. Place on the path:
 * the end of DATA of the inbound SMTP stage; a real PolicyEngine, an
 * in-memory spool and hand-off, no sockets.
 */
import assert from "node:assert/strict";
import { runDataPhase } from "./data_phase.ts";
import { ListenerDomainCache } from "./relay.ts";
import type { ReceptionServices } from "./reception_services.ts";
import { ConnMeta } from "../../policy/conn_methods.ts";
import { parseEsmtpListener, resolveListenerParams } from "../../policy/config/esmtp_listener.ts";
import { PolicyError } from "../../policy/policy_error.ts";
import { LogDispatcher } from "../../log/local_logger.ts";
import type { LogRecord } from "../../log/record.ts";
import type { Spool, SpoolPair } from "../../spool/spool.ts";
import type { Message } from "../../message/message.ts";
import { parseEnvelopeAddress } from "../../message/envelope_address.ts";
import { loadPolicy } from "../../../tests/support/policy_engine.ts";

/** An in-memory spool whose stores take `delayMs`. */
class SlowSpool implements Spool {
  records = new Map<string, Uint8Array>();
  delayMs = 0;
  load(id: string) {
    return Promise.resolve(this.records.get(id) ?? null);
  }
  async store(id: string, bytes: Uint8Array) {
    await new Promise((r) => setTimeout(r, this.delayMs));
    this.records.set(id, bytes);
  }
  remove(id: string) {
    this.records.delete(id);
    return Promise.resolve();
  }
  async *enumerate() {}
  close() {
    return Promise.resolve();
  }
}

function rig(engine: ReceptionServices["engine"], listener: Record<string, unknown>) {
  const spools = { data: new SlowSpool(), meta: new SlowSpool() };
  const inserted: Message[] = [];
  const prepared: string[] = [];
  const records: LogRecord[] = [];
  const logs = new LogDispatcher();
  logs.add({
    log: (r) => void records.push(r),
    flush: () => Promise.resolve(),
    close: () => Promise.resolve(),
  });
  const handoff = {
    insertError: null as Error | null,
    prepareError: null as Error | null,
    insertDelayMs: 0,
    async insert(msg: Message) {
      await new Promise((res) => setTimeout(res, this.insertDelayMs));
      if (this.insertError) throw this.insertError;
      inserted.push(msg);
    },
    prepare(name: string) {
      prepared.push(name);
      return this.prepareError ? Promise.reject(this.prepareError) : Promise.resolve();
    },
  };
  const services: ReceptionServices = {
    engine,
    spools: spools as SpoolPair,
    logs,
    handoff,
    nodeId: "00000000-0000-0000-0000-000000000000",
    shuttingDown: false,
  };
  const cfg = parseEsmtpListener({ hostname: "mx.test", ...listener });
  const params = resolveListenerParams(cfg, "127.0.0.1", "127.0.0.1");
  const conn = new ConnMeta({ received_from: "127.0.0.1:4000", received_via: "127.0.0.1:25" });
  const input = {
    services,
    params,
    conn,
    sender: parseEnvelopeAddress("s@src.test"),
    recipients: [parseEnvelopeAddress("r@dest.test")],
    body: new TextEncoder().encode("Subject: t\r\n\r\nbody\r\n"),
    log: { ehlo: "c.test", peerIp: "127.0.0.1", sessionId: "s", nodeId: services.nodeId },
    peerIp: "127.0.0.1",
    localIp: "127.0.0.1",
    authenticated: false,
    relayCache: new ListenerDomainCache(engine, "127.0.0.1:25", conn),
  };
  return { spools, inserted, prepared, records, handoff, input };
}

Deno.test("runDataPhase() removes the records of a spool write that outlived the timeout", async () => {
  using p = await loadPolicy("local kumo = require 'kumo'\n");
  const r = rig(p.engine, { data_processing_timeout: "100ms" });
  r.spools.data.delayMs = 400;
  r.spools.meta.delayMs = 400;
  const reply = await runDataPhase(r.input);
  assert.deepEqual(reply, { code: 451, text: "4.4.5 data_processing_timeout exceeded (spool)" });
  await new Promise((res) => setTimeout(res, 600)); // the writes finish meanwhile
  assert.equal(r.spools.data.records.size, 0, "data record removed again");
  assert.equal(r.spools.meta.records.size, 0, "meta record removed again");
  assert.equal(r.inserted.length, 0, "never queued");
  assert.equal(r.records.filter((x) => x.type === "Reception").length, 0, "not logged");
});

Deno.test("runDataPhase() resolves the queue before spooling; a failure spools nothing", async () => {
  using p = await loadPolicy("local kumo = require 'kumo'\n");
  const r = rig(p.engine, {});
  r.handoff.prepareError = new Error("unknown field `retry_intervall`");
  await assert.rejects(
    () => runDataPhase(r.input),
    (e) =>
      e instanceof PolicyError &&
      /^Cannot resolve queue "dest\.test": unknown field `retry_intervall`$/.test(e.message),
  );
  assert.deepEqual(r.prepared, ["dest.test"]);
  assert.equal(r.spools.data.records.size, 0);
  assert.equal(r.spools.meta.records.size, 0);
  assert.equal(r.records.length, 0);
});

Deno.test("runDataPhase() unwinds the spool when every insert fails", async () => {
  using p = await loadPolicy("local kumo = require 'kumo'\n");
  const r = rig(p.engine, {});
  r.handoff.insertError = new Error("queue manager is shutting down");
  await assert.rejects(() => runDataPhase(r.input), PolicyError);
  assert.equal(r.spools.data.records.size, 0);
  assert.equal(r.spools.meta.records.size, 0);
});

Deno.test("runDataPhase() commits once spooled: a late timeout does not refuse", async () => {
  using p = await loadPolicy("local kumo = require 'kumo'\n");
  const r = rig(p.engine, { data_processing_timeout: "300ms" });
  r.handoff.insertDelayMs = 500; // queued after the budget ran out: still acknowledged
  const reply = await runDataPhase(r.input);
  assert.match(reply.text, /^OK ids=[0-9a-f]{32}$/);
  assert.equal(reply.code, 250);
  assert.equal(r.inserted.length, 1);
  assert.equal(r.spools.data.records.size, 1);
});
