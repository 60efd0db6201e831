/**
 * Unit tests for the log record wire form (src/log/record.ts): key order,
 * optional keys, the defaults of newLogRecord(), timestamps and SMTP
 * response parsing. Place on the path:
 * beside it, the records every stage logs.
 */
import assert from "node:assert/strict";
import {
  formatRfc3339Nanos,
  type LogRecord,
  newLogRecord,
  parseEnhancedCode,
  RECORD_TYPES,
  recordToObject,
  responseFromReply,
  serializeRecord,
} from "./record.ts";

const KEY_ORDER = [
  "type",
  "id",
  "sender",
  "recipient",
  "queue",
  "site",
  "size",
  "response",
  "peer_address",
  "timestamp",
  "event_time",
  "created",
  "created_time",
  "num_attempts",
  "bounce_classification",
  "egress_pool",
  "egress_source",
  "source_address",
  "feedback_report",
  "meta",
  "headers",
  "delivery_protocol",
  "reception_protocol",
  "nodeid",
  "tls_cipher",
  "tls_protocol_version",
  "tls_peer_subject_name",
  "provider_name",
  "session_id",
];

/** A record whose keys are deliberately built in a scrambled order. */
function sampleRecord(): LogRecord {
  return {
    session_id: "5f2a0e1c-0000-4000-8000-000000000001",
    nodeid: "7a1b2c3d-0000-4000-8000-000000000002",
    type: "Delivery",
    headers: {},
    meta: { tenant: "shop" },
    id: "0123456789abcdef0123456789abcdef",
    sender: "bounce@sender.example",
    recipient: "user@recipient.example",
    queue: "recipient.example",
    site: "pool1-ip2->mx.recipient.example@smtp_client",
    size: 1234,
    response: {
      command: ".\r\n",
      content: "ok queued",
      enhanced_code: { detail: 0, subject: 0, class: 2 },
      code: 250,
    },
    peer_address: { addr: "192.0.2.7", name: "mx.recipient.example." },
    timestamp: 1767323045,
    event_time: "2026-01-02T03:04:05.123456789Z",
    created: 1767323040,
    created_time: "2026-01-02T03:04:00.000000000Z",
    num_attempts: 0,
    bounce_classification: "Uncategorized",
    egress_pool: "pool1",
    egress_source: "ip2",
    source_address: { address: "10.1.2.3:40122" },
    feedback_report: null,
    delivery_protocol: "ESMTP",
    reception_protocol: "ESMTP",
    tls_cipher: "TLS_AES_256_GCM_SHA384",
    tls_protocol_version: "TLSv1.3",
    tls_peer_subject_name: ["CN=mx.recipient.example"],
    provider_name: "example",
  };
}

Deno.test("serializeRecord() emits keys in logs.md §1 order", () => {
  const json = serializeRecord(sampleRecord());
  const parsed = JSON.parse(json);
  assert.deepEqual(Object.keys(parsed), KEY_ORDER);
  assert.deepEqual(Object.keys(parsed.response), ["code", "enhanced_code", "content", "command"]);
  assert.deepEqual(Object.keys(parsed.response.enhanced_code), ["class", "subject", "detail"]);
  assert.deepEqual(Object.keys(parsed.peer_address), ["name", "addr"]);
  assert.ok(json.startsWith('{"type":"Delivery","id":"0123456789abcdef0123456789abcdef",'));
  assert.ok(!json.includes("\n"));
});

Deno.test("serializeRecord() omits empty optional keys and keeps null ones", () => {
  const rec = sampleRecord();
  delete rec.tls_cipher;
  rec.tls_protocol_version = undefined;
  rec.tls_peer_subject_name = [];
  delete rec.provider_name;
  delete rec.session_id;
  rec.peer_address = null;
  rec.source_address = null;
  rec.egress_pool = null;
  rec.egress_source = null;
  rec.delivery_protocol = null;
  const parsed = JSON.parse(serializeRecord(rec));
  assert.deepEqual(Object.keys(parsed), KEY_ORDER.slice(0, 24));
  assert.equal(parsed.peer_address, null);
  assert.equal(parsed.source_address, null);
  assert.equal(parsed.feedback_report, null);
  assert.equal(parsed.delivery_protocol, null);
});

Deno.test("serializeRecord() keeps recipient arrays, is_secure and proxy fields", () => {
  const rec = sampleRecord();
  rec.recipient = ["a@x.example", "b@x.example"];
  rec.peer_address = { is_secure: true, addr: "192.0.2.7:2525", name: "mx." };
  rec.source_address = { protocol: "haproxy", server: "10.0.0.1:5000", address: "10.1.2.3:1" };
  const parsed = JSON.parse(serializeRecord(rec));
  assert.deepEqual(parsed.recipient, ["a@x.example", "b@x.example"]);
  assert.deepEqual(Object.keys(parsed.peer_address), ["name", "addr", "is_secure"]);
  assert.deepEqual(Object.keys(parsed.source_address), ["address", "server", "protocol"]);
  rec.peer_address = { name: "mx.", addr: "192.0.2.7", is_secure: false };
  assert.deepEqual(Object.keys(JSON.parse(serializeRecord(rec)).peer_address), ["name", "addr"]);
});

Deno.test("serializeRecord() uses captured meta/headers when given", () => {
  const parsed = JSON.parse(
    serializeRecord(sampleRecord(), { meta: { a: 1 }, headers: { Subject: "hi" } }),
  );
  assert.deepEqual(parsed.meta, { a: 1 });
  assert.deepEqual(parsed.headers, { Subject: "hi" });
});

Deno.test("recordToObject() orders feedback_report keys", () => {
  const rec = sampleRecord();
  rec.type = "Feedback";
  rec.feedback_report = {
    user_agent: "SomeGenerator/1.0",
    feedback_type: "abuse",
    version: "1",
    arrival_date: null,
    incidents: null,
    original_envelope_id: null,
    original_mail_from: "a@b.example",
    reporting_mta: { name: "mx.example", mta_type: "dns" },
    source_ip: null,
    authentication_results: [],
    original_rcpto_to: ["x@y.example"],
    reported_domain: [],
    reported_uri: [],
    extensions: {},
    original_message: null,
    supplemental_trace: null,
  };
  const fb = recordToObject(rec).feedback_report as Record<string, unknown>;
  assert.deepEqual(Object.keys(fb).slice(0, 3), ["feedback_type", "user_agent", "version"]);
  assert.deepEqual(Object.keys(fb.reporting_mta as object), ["mta_type", "name"]);
  assert.equal(Object.keys(fb).length, 16);
});

Deno.test("newLogRecord() fills every default; one shape; output omits the unset optional keys", () => {
  const response = { code: 250, enhanced_code: null, content: "", command: null };
  const now = Date.UTC(2026, 0, 2, 3, 4, 5, 678) + 0.25;
  const created = Date.UTC(2026, 0, 1, 0, 0, 0, 1);
  const rec = newLogRecord("Reception", response, "node-1", created, now);
  assert.deepEqual(Object.keys(rec), KEY_ORDER, "every key present, in wire order");
  assert.equal(rec.response, response, "response kept, not copied");
  assert.equal(
    serializeRecord(rec),
    '{"type":"Reception","id":"","sender":"","recipient":"","queue":"","site":"","size":0,' +
      '"response":{"code":250,"enhanced_code":null,"content":"","command":null},' +
      '"peer_address":null,"timestamp":1767323045,"event_time":"2026-01-02T03:04:05.678250000Z",' +
      '"created":1767225600,"created_time":"2026-01-01T00:00:00.001000000Z","num_attempts":0,' +
      '"bounce_classification":"Uncategorized","egress_pool":null,"egress_source":null,' +
      '"source_address":null,"feedback_report":null,"meta":{},"headers":{},' +
      '"delivery_protocol":null,"reception_protocol":null,"nodeid":"node-1"}',
  );
  // Without a creation time the record was created at its event time.
  const r2 = newLogRecord("Rejection", response, "n", undefined, now);
  assert.equal(r2.created, r2.timestamp);
  assert.equal(r2.created_time, r2.event_time);
  // Records do not share their meta/headers objects.
  assert.notEqual(newLogRecord("Delivery", response, "n").meta, rec.meta);
  // Without a time: now.
  const before = Math.floor(Date.now() / 1000);
  const r3 = newLogRecord("Delivery", response, "n");
  assert.ok(r3.timestamp >= before && r3.timestamp <= Math.floor(Date.now() / 1000));
});

Deno.test("RECORD_TYPES lists the 14 record types", () => {
  assert.equal(RECORD_TYPES.length, 14);
  assert.ok(!(RECORD_TYPES as readonly string[]).includes("Any"));
});

Deno.test("formatRfc3339Nanos() prints nine fraction digits in UTC", () => {
  assert.equal(formatRfc3339Nanos(0), "1970-01-01T00:00:00.000000000Z");
  assert.equal(
    formatRfc3339Nanos(Date.UTC(2026, 0, 2, 3, 4, 5, 123) + 0.5),
    "2026-01-02T03:04:05.123500000Z",
  );
});

// Golden table: [code, text, expected enhanced_code, expected content]
const REPLIES: [number, string | string[], [number, number, number] | null, string][] = [
  [250, "2.0.0 Ok: queued as 1234", [2, 0, 0], "Ok: queued as 1234"],
  [550, "5.1.1 <a@b.example>: user unknown", [5, 1, 1], "<a@b.example>: user unknown"],
  [451, "4.7.650 try later", [4, 7, 650], "try later"],
  [550, "5.1.10 recipient address rejected", [5, 1, 10], "recipient address rejected"],
  [250, "OK", null, "OK"],
  [250, "", null, ""],
  [550, "3.1.1 not a valid class", null, "3.1.1 not a valid class"],
  [550, "5.1.1", null, "5.1.1"], // no trailing space: not split
  [550, "5.1.1x text", null, "5.1.1x text"],
  [550, "5.1 text", null, "5.1 text"],
  [550, "5.1234.1 text", null, "5.1234.1 text"],
  [550, "5.a.1 text", null, "5.a.1 text"],
  [550, " 5.1.1 text", null, " 5.1.1 text"],
  [550, "5.1.1 line one\r\n5.1.1 line two", [5, 1, 1], "line one line two"],
  [550, "5.1.1 line one\nline two", [5, 1, 1], "line one line two"],
  [550, ["5.7.1 first", "5.7.1 second", "third"], [5, 7, 1], "first second third"],
  [421, "service\r\nnot\ravailable\n", null, "service not available "],
  [554, ["no enhanced", "second"], null, "no enhanced second"],
];

Deno.test("responseFromReply() golden table", () => {
  for (const [code, text, enh, content] of REPLIES) {
    const r = responseFromReply(code, text, "RCPT TO:<a@b.example>\r\n");
    const label = JSON.stringify(text);
    assert.equal(r.code, code, label);
    assert.deepEqual(
      r.enhanced_code,
      enh === null ? null : { class: enh[0], subject: enh[1], detail: enh[2] },
      label,
    );
    assert.equal(r.content, content, label);
    assert.equal(r.command, "RCPT TO:<a@b.example>\r\n");
  }
  assert.equal(responseFromReply(250, "ok", null).command, null);
});

Deno.test("parseEnhancedCode() reports where the text starts", () => {
  assert.deepEqual(parseEnhancedCode("4.4.1 x"), {
    code: { class: 4, subject: 4, detail: 1 },
    rest: 6,
  });
  assert.equal(parseEnhancedCode("2.0"), null);
});
