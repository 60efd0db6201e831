/**
 * Unit tests for LocalLogger and LogDispatcher (src/log/local_logger.ts):
 * JSON lines, captures, per_record routing, templates, filters, bad config.
 * Place on the path: beside it, where every stage's records are written.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import zlib from "node:zlib";
import { ConfigError } from "../util/config_error.ts";
import {
  LocalLogger,
  type LocalLogsConfig,
  type LogContext,
  LogDispatcher,
} from "./local_logger.ts";
import type { LogRecord, RecordType } from "./record.ts";

function tempDir(): string {
  return Deno.makeTempDirSync({ prefix: "kumo_ll_" });
}

function config(dir: string, extra: Partial<LocalLogsConfig> = {}): LocalLogsConfig {
  return {
    logDir: dir,
    maxFileSize: 1_000_000_000,
    compressionLevel: 0,
    backPressure: 128_000,
    headers: [],
    meta: [],
    perRecord: {},
    ...extra,
  };
}

function record(type: RecordType, id = "0123456789abcdef0123456789abcdef"): LogRecord {
  return {
    type,
    id,
    sender: "s@a.example",
    recipient: "r@b.example",
    queue: "b.example",
    site: "",
    size: 10,
    response: { code: 250, enhanced_code: null, content: "", command: null },
    peer_address: { name: "ehlo.example", addr: "127.0.0.1" },
    timestamp: 1767323045,
    event_time: "2026-01-02T03:04:05.000000000Z",
    created: 1767323045,
    created_time: "2026-01-02T03:04:05.000000000Z",
    num_attempts: 0,
    bounce_classification: "Uncategorized",
    egress_pool: null,
    egress_source: null,
    source_address: null,
    feedback_report: null,
    meta: {},
    headers: {},
    delivery_protocol: null,
    reception_protocol: "ESMTP",
    nodeid: "7a1b2c3d-0000-4000-8000-000000000002",
  };
}

const CTX: LogContext = {
  meta: { tenant: "shop", x_a: 1, other: 2 },
  getAllHeaders: () => [
    { name: "Subject", value: "hi" },
    { name: "X-Tag", value: "t1" },
    { name: "x-tag", value: "t2" },
  ],
};

/** Decoded lines of every segment in dir, keyed by file name. */
function readSegments(dir: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (!statSync(path).isFile()) continue;
    const text = zlib.zstdDecompressSync(readFileSync(path)).toString("utf8");
    out.set(name, text.split("\n").filter((l) => l !== ""));
  }
  return out;
}

Deno.test("LocalLogger writes JSON lines with captured meta and headers", async () => {
  const dir = tempDir();
  const logger = new LocalLogger(config(dir, { meta: ["tenant", "x_*"], headers: ["x-tag"] }));
  logger.log(record("Reception"), CTX);
  await logger.close();
  const segs = [...readSegments(dir).values()];
  assert.equal(segs.length, 1);
  const rec = JSON.parse(segs[0][0]);
  assert.equal(rec.type, "Reception");
  assert.deepEqual(rec.meta, { tenant: "shop", x_a: 1 });
  assert.deepEqual(rec.headers, { "X-Tag": ["t1", "t2"] });
});

Deno.test("LocalLogger per_record: suffix, log_dir, enable=false and Any", async () => {
  const dir = tempDir();
  const deliveries = join(dir, "delivery");
  const logger = new LocalLogger(config(dir, {
    perRecord: {
      Reception: { enable: true, suffix: "_recv", segmentHeader: "" },
      Delivery: { enable: true, logDir: deliveries, segmentHeader: "" },
      TransientFailure: { enable: false, segmentHeader: "" },
      Any: { enable: true, suffix: "_other", segmentHeader: "# other\n" },
    },
  }));
  logger.log(record("Reception"), CTX);
  logger.log(record("Delivery"), CTX);
  logger.log(record("TransientFailure"), CTX);
  logger.log(record("Bounce"), CTX);
  logger.log(record("Expiration"), CTX);
  assert.equal(logger.wants("TransientFailure"), false);
  await logger.close();

  const main = readSegments(dir);
  const names = [...main.keys()];
  assert.equal(names.length, 2, names.join(","));
  const recv = names.find((n) => n.endsWith("_recv"))!;
  const other = names.find((n) => n.endsWith("_other"))!;
  assert.match(recv, /^\d{8}-\d{6}(\.\d{3}|\.\d{6}|\.\d{9})?_recv$/);
  assert.deepEqual(main.get(recv)!.map((l) => JSON.parse(l).type), ["Reception"]);
  const otherLines = main.get(other)!;
  assert.equal(otherLines[0], "# other");
  assert.deepEqual(otherLines.slice(1).map((l) => JSON.parse(l).type), ["Bounce", "Expiration"]);
  const del = [...readSegments(deliveries).values()];
  assert.deepEqual(del.map((lines) => lines.map((l) => JSON.parse(l).type)), [["Delivery"]]);
});

Deno.test("LocalLogger Any enable=false drops unlisted types", async () => {
  const dir = tempDir();
  const logger = new LocalLogger(config(dir, {
    perRecord: {
      Any: { enable: false, segmentHeader: "" },
      Bounce: { enable: true, segmentHeader: "" },
    },
  }));
  logger.log(record("Reception"), CTX);
  logger.log(record("Bounce"), CTX);
  await logger.close();
  const lines = [...readSegments(dir).values()].flat();
  assert.deepEqual(lines.map((l) => JSON.parse(l).type), ["Bounce"]);
});

Deno.test("LocalLogger renders a per_record template", async () => {
  const dir = tempDir();
  const logger = new LocalLogger(config(dir, {
    meta: ["tenant"],
    perRecord: {
      Bounce: {
        enable: true,
        segmentHeader: "",
        template:
          "Bounce! id={{ id }} code={{ response.code }} age={{ timestamp - created }} t={{ log_record.meta.tenant }} <&>",
      },
    },
  }));
  const rec = record("Bounce");
  rec.response = { code: 550, enhanced_code: null, content: "no", command: null };
  rec.created -= 30;
  logger.log(rec, CTX);
  await logger.close();
  const lines = [...readSegments(dir).values()].flat();
  assert.deepEqual(lines, [
    "Bounce! id=0123456789abcdef0123456789abcdef code=550 age=30 t=shop <&>",
  ]);
});

Deno.test("LocalLogger rejects bad configuration with ConfigError", () => {
  const dir = tempDir();
  assert.throws(
    () =>
      new LocalLogger(config(dir, {
        perRecord: { Recieved: { enable: true, segmentHeader: "" } },
      })),
    ConfigError,
  );
  assert.throws(
    () =>
      new LocalLogger(config(dir, {
        perRecord: { Any: { enable: true, segmentHeader: "", template: "{{ id " } },
      })),
    ConfigError,
  );
});

Deno.test("LocalLogger marks the previous run's files read-only at startup", async () => {
  const dir = tempDir();
  const old = join(dir, "20250101-000000");
  writeFileSync(old, "leftover", { mode: 0o644 });
  const logger = new LocalLogger(config(dir));
  assert.equal(statSync(old).mode & 0o222, 0);
  await logger.close();
});

Deno.test("LocalLogger filter decides per record, sync or async", async () => {
  const dir = tempDir();
  const logger = new LocalLogger(config(dir, { filterEvent: "should_log" }), {
    filter: (rec) => rec.id.startsWith("a") ? true : Promise.resolve(rec.id.startsWith("b")),
  });
  logger.log(record("Reception", "a".repeat(32)), CTX);
  logger.log(record("Reception", "b".repeat(32)), CTX);
  logger.log(record("Reception", "c".repeat(32)), CTX);
  await logger.close();
  const ids = [...readSegments(dir).values()].flat().map((l) => JSON.parse(l).id[0]);
  assert.deepEqual(ids.sort(), ["a", "b"]);
});

Deno.test("LogDispatcher fans out to every logger and fetches headers once", async () => {
  const a = tempDir();
  const b = tempDir();
  const d = new LogDispatcher();
  d.add(new LocalLogger(config(a, { headers: ["Subject"] })));
  d.add(new LocalLogger(config(b, { headers: ["X-*"], perRecord: {} })));
  assert.equal(d.size, 2);
  let calls = 0;
  d.submit(record("Delivery"), {
    meta: {},
    getAllHeaders: () => {
      calls++;
      return CTX.getAllHeaders();
    },
  });
  await d.flush();
  await d.close();
  assert.equal(calls, 1);
  const ra = JSON.parse([...readSegments(a).values()].flat()[0]);
  const rb = JSON.parse([...readSegments(b).values()].flat()[0]);
  assert.deepEqual(ra.headers, { Subject: "hi" });
  assert.deepEqual(rb.headers, { "X-Tag": ["t1", "t2"] });
  d.submit(record("Delivery"), CTX); // no loggers left: no-op
});
