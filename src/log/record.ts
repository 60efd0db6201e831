/**
 * Log records: the one JSON object per line that every delivery/event log
 * consumer (tailers, TSA, shippers, webhooks) parses.
 *
 * Place on the mail's path: every stage (SMTP server, queue, egress, HTTP)
 * builds a `LogRecord` (from {@link newLogRecord}, which holds the defaults)
 * and hands it to the log dispatcher; this file turns it
 * into the exact KumoMTA wire form (logs.md §1): keys in serde struct order,
 * optional keys omitted when empty. It must never reorder, rename or drop a
 * field: downstream parsers depend on the shape.
 *
 * @module
 */

import type { RecordType } from "./record_types.ts";

export { RECORD_TYPES, type RecordType } from "./record_types.ts";

/** RFC 3463 enhanced status code, `{class, subject, detail}`. */
export interface EnhancedCode {
  class: number;
  subject: number;
  detail: number;
}

/** The `response` object of a record (logs.md §1.1). */
export interface ResponseRecord {
  /** SMTP-style status code. */
  code: number;
  /** Parsed enhanced code, or null. */
  enhanced_code: EnhancedCode | null;
  /** Reply text without code/enhanced code, single line. */
  content: string;
  /** Command line the reply answered (with CRLF for outbound), or null. */
  command: string | null;
}

/** The `peer_address` object (logs.md §1.2). */
export interface PeerAddress {
  /** MX host name (outbound) or EHLO argument (inbound). */
  name: string;
  /** IP, with `:port` only for non-default ports. */
  addr: string;
  /** Present (true) only for DNSSEC-validated lookups. */
  is_secure?: boolean;
}

/** The `source_address` object: outbound local endpoint. */
export interface SourceAddress {
  /** `ip:port` of the local end. */
  address: string;
  /** Proxy `ip:port`, only when a proxy was used. */
  server?: string;
  /** Proxy protocol, only when a proxy was used. */
  protocol?: "socks5" | "haproxy";
}

/** `reporting_mta` of an ARF report. */
export interface ReportingMta {
  mta_type: string;
  name: string;
}

/** The `feedback_report` object of Feedback records (logs.md §4), keys in wire order. */
export interface FeedbackReport {
  feedback_type: string;
  user_agent: string;
  version: string;
  arrival_date: string | null;
  incidents: number | null;
  original_envelope_id: string | null;
  original_mail_from: string | null;
  reporting_mta: ReportingMta | null;
  source_ip: string | null;
  authentication_results: string[];
  original_rcpto_to: string[];
  reported_domain: string[];
  reported_uri: string[];
  extensions: Record<string, string[]>;
  original_message: string | number[] | null;
  supplemental_trace: Record<string, unknown> | null;
}

/** One log record; field names and order are the wire format (logs.md §1). */
export interface LogRecord {
  type: RecordType;
  id: string;
  sender: string;
  recipient: string | string[];
  queue: string;
  site: string;
  size: number;
  response: ResponseRecord;
  peer_address: PeerAddress | null;
  /** Event time, Unix seconds. */
  timestamp: number;
  /** Event time, RFC 3339 UTC with nanoseconds (see {@link formatRfc3339Nanos}). */
  event_time: string;
  /** Message creation time, Unix seconds. */
  created: number;
  /** Message creation time, RFC 3339 UTC. */
  created_time: string;
  num_attempts: number;
  bounce_classification: string;
  egress_pool: string | null;
  egress_source: string | null;
  source_address: SourceAddress | null;
  feedback_report: FeedbackReport | null;
  meta: Record<string, unknown>;
  headers: Record<string, unknown>;
  delivery_protocol: string | null;
  reception_protocol: string | null;
  nodeid: string;
  tls_cipher?: string;
  tls_protocol_version?: string;
  tls_peer_subject_name?: string[];
  provider_name?: string;
  session_id?: string;
}

/**
 * A record of `type` with every field at its default: event time `nowMs`,
 * creation time `createdMs` (the event time when omitted), empty strings,
 * size 0, 0 attempts, `"Uncategorized"`, nulls, empty `meta`/`headers`, and
 * the optional keys present but undefined (so every record has one shape;
 * {@link recordToObject} omits them). The caller assigns the fields that
 * differ. Hot path: one object literal, no spread, no copy.
 *
 * @param response the record's `response` object (kept, not copied)
 * @param nodeid UUID of this node
 * @param createdMs message creation time, epoch ms @default nowMs
 * @param nowMs event time, epoch ms @default nowEpochMs()
 * @example
 * ```ts
 * const rec = newLogRecord("Reception", { code: 250, enhanced_code: null, content: "", command: null }, nodeId, msg.createdMs);
 * rec.id = msg.id;
 * rec.sender = msg.sender.email;
 * logs.submit(rec, ctx);
 * ```
 */
export function newLogRecord(
  type: RecordType,
  response: ResponseRecord,
  nodeid: string,
  createdMs?: number,
  nowMs: number = nowEpochMs(),
): LogRecord {
  const secs = Math.floor(nowMs / 1000);
  const time = formatRfc3339Nanos(nowMs);
  return {
    type,
    id: "",
    sender: "",
    recipient: "",
    queue: "",
    site: "",
    size: 0,
    response,
    peer_address: null,
    timestamp: secs,
    event_time: time,
    created: createdMs === undefined ? secs : Math.floor(createdMs / 1000),
    created_time: createdMs === undefined ? time : formatRfc3339Nanos(createdMs),
    num_attempts: 0,
    bounce_classification: "Uncategorized",
    egress_pool: null,
    egress_source: null,
    source_address: null,
    feedback_report: null,
    meta: {},
    headers: {},
    delivery_protocol: null,
    reception_protocol: null,
    nodeid,
    tls_cipher: undefined,
    tls_protocol_version: undefined,
    tls_peer_subject_name: undefined,
    provider_name: undefined,
    session_id: undefined,
  };
}

/** Captured meta and headers that replace the record's own when serialising. */
export interface CapturedFields {
  meta: Record<string, unknown>;
  headers: Record<string, unknown>;
}

function orderedResponse(r: ResponseRecord): ResponseRecord {
  const e = r.enhanced_code;
  return {
    code: r.code,
    enhanced_code: e === null || e === undefined
      ? null
      : { class: e.class, subject: e.subject, detail: e.detail },
    content: r.content,
    command: r.command ?? null,
  };
}

function orderedPeer(p: PeerAddress | null): PeerAddress | null {
  if (p === null || p === undefined) return null;
  const out: PeerAddress = { name: p.name, addr: p.addr };
  if (p.is_secure) out.is_secure = true;
  return out;
}

function orderedSource(s: SourceAddress | null): SourceAddress | null {
  if (s === null || s === undefined) return null;
  const out: SourceAddress = { address: s.address };
  if (s.server) out.server = s.server;
  if (s.protocol) out.protocol = s.protocol;
  return out;
}

function orderedFeedback(f: FeedbackReport | null): FeedbackReport | null {
  if (f === null || f === undefined) return null;
  return {
    feedback_type: f.feedback_type,
    user_agent: f.user_agent,
    version: f.version,
    arrival_date: f.arrival_date ?? null,
    incidents: f.incidents ?? null,
    original_envelope_id: f.original_envelope_id ?? null,
    original_mail_from: f.original_mail_from ?? null,
    reporting_mta: f.reporting_mta
      ? { mta_type: f.reporting_mta.mta_type, name: f.reporting_mta.name }
      : null,
    source_ip: f.source_ip ?? null,
    authentication_results: f.authentication_results ?? [],
    original_rcpto_to: f.original_rcpto_to ?? [],
    reported_domain: f.reported_domain ?? [],
    reported_uri: f.reported_uri ?? [],
    extensions: f.extensions ?? {},
    original_message: f.original_message ?? null,
    supplemental_trace: f.supplemental_trace ?? null,
  };
}

/**
 * The record as a plain object with keys in wire order (what templates and
 * log hooks see as `log_record`). Optional keys are omitted when empty.
 *
 * @example
 * ```ts
 * const obj = recordToObject(rec);
 * Object.keys(obj)[0]; // "type"
 * ```
 */
export function recordToObject(rec: LogRecord, captured?: CapturedFields): Record<string, unknown> {
  // Hand-ordered literal: V8 keeps insertion order for string keys, so
  // JSON.stringify emits serde struct order.
  const out: Record<string, unknown> = {
    type: rec.type,
    id: rec.id,
    sender: rec.sender,
    recipient: rec.recipient,
    queue: rec.queue,
    site: rec.site,
    size: rec.size,
    response: orderedResponse(rec.response),
    peer_address: orderedPeer(rec.peer_address),
    timestamp: rec.timestamp,
    event_time: rec.event_time,
    created: rec.created,
    created_time: rec.created_time,
    num_attempts: rec.num_attempts,
    bounce_classification: rec.bounce_classification,
    egress_pool: rec.egress_pool ?? null,
    egress_source: rec.egress_source ?? null,
    source_address: orderedSource(rec.source_address),
    feedback_report: orderedFeedback(rec.feedback_report),
    meta: captured ? captured.meta : rec.meta,
    headers: captured ? captured.headers : rec.headers,
    delivery_protocol: rec.delivery_protocol ?? null,
    reception_protocol: rec.reception_protocol ?? null,
    nodeid: rec.nodeid,
  };
  if (rec.tls_cipher) out.tls_cipher = rec.tls_cipher;
  if (rec.tls_protocol_version) out.tls_protocol_version = rec.tls_protocol_version;
  if (rec.tls_peer_subject_name && rec.tls_peer_subject_name.length > 0) {
    out.tls_peer_subject_name = rec.tls_peer_subject_name;
  }
  if (rec.provider_name) out.provider_name = rec.provider_name;
  if (rec.session_id) out.session_id = rec.session_id;
  return out;
}

/**
 * Serialise a record as compact JSON (no trailing newline), keys in the order
 * of logs.md §1. Hot path: one object literal and one `JSON.stringify`.
 *
 * @param captured meta/headers captured by the logger, replacing `rec.meta`/`rec.headers`
 * @example
 * ```ts
 * const line = serializeRecord(rec) + "\n";
 * ```
 */
export function serializeRecord(rec: LogRecord, captured?: CapturedFields): string {
  return JSON.stringify(recordToObject(rec, captured));
}

function pad2(n: number): string {
  return n < 10 ? "0" + n : "" + n;
}

/**
 * Format an instant as RFC 3339 UTC with nine fractional digits, e.g.
 * `2026-01-02T03:04:05.123456789Z`.
 *
 * @param epochMs milliseconds since the Unix epoch; a fractional part carries sub-ms precision
 *   (a double near 1.7e12 resolves about 0.25 µs)
 * @example
 * ```ts
 * formatRfc3339Nanos(0); // "1970-01-01T00:00:00.000000000Z"
 * ```
 */
export function formatRfc3339Nanos(epochMs: number): string {
  const whole = Math.floor(epochMs);
  const second = Math.floor(whole / 1000);
  if (second !== prefixSecond) {
    // Records come many per second: the date part is built once per second.
    const d = new Date(second * 1000);
    prefix = d.getUTCFullYear() + "-" + pad2(d.getUTCMonth() + 1) + "-" + pad2(d.getUTCDate()) +
      "T" + pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes()) + ":" +
      pad2(d.getUTCSeconds()) + ".";
    prefixSecond = second;
  }
  // Nanoseconds within the second: ms part plus the sub-ms fraction.
  const subMsNs = Math.min(999_999, Math.max(0, Math.round((epochMs - whole) * 1e6)));
  const ns = (whole - second * 1000) * 1_000_000 + subMsNs;
  return prefix + String(ns).padStart(9, "0") + "Z";
}

/** The `YYYY-MM-DDTHH:MM:SS.` of the last second formatted. */
let prefix = "";
let prefixSecond = NaN;

/**
 * Current wall-clock time in epoch milliseconds with sub-millisecond
 * precision borrowed from the monotonic clock (for unique 9-digit fractions).
 */
export function nowEpochMs(): number {
  const frac = performance.now() % 1;
  return Date.now() + frac;
}

/** True for a 1–3 digit run of ASCII digits in `s[from, to)`. */
function digitsOk(s: string, from: number, to: number): boolean {
  const n = to - from;
  if (n < 1 || n > 3) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/**
 * Parse a leading `C.S.D ` enhanced status code (C in 2/4/5) from a line.
 * Returns the code and the index where the remaining text starts, or null.
 */
export function parseEnhancedCode(line: string): { code: EnhancedCode; rest: number } | null {
  const c = line.charCodeAt(0);
  if ((c !== 50 && c !== 52 && c !== 53) || line.charCodeAt(1) !== 46) return null;
  const dot2 = line.indexOf(".", 2);
  if (dot2 < 0) return null;
  const sp = line.indexOf(" ", dot2 + 1);
  if (sp < 0) return null;
  if (!digitsOk(line, 2, dot2) || !digitsOk(line, dot2 + 1, sp)) return null;
  return {
    code: {
      class: c - 48,
      subject: Number(line.slice(2, dot2)),
      detail: Number(line.slice(dot2 + 1, sp)),
    },
    rest: sp + 1,
  };
}

const LINE_BREAKS = /\r\n|\r|\n/g;

/**
 * Build the `response` object from an SMTP reply.
 *
 * The enhanced code is split off only when the first line starts with
 * `C.S.D ` and C is 2, 4 or 5; continuation lines repeating the same code
 * have it removed too. Lines are joined and every CR/LF (a CRLF pair counts
 * as one) becomes one space.
 *
 * @param code reply code, e.g. 250
 * @param text reply text without the code: a string (lines separated by LF/CRLF) or the lines
 * @param command command line the reply answered, or null
 * @example
 * ```ts
 * responseFromReply(550, "5.1.1 no such user", "RCPT TO:<a@b.example>\r\n");
 * // {code: 550, enhanced_code: {class: 5, subject: 1, detail: 1}, content: "no such user", ...}
 * ```
 */
export function responseFromReply(
  code: number,
  text: string | readonly string[],
  command: string | null,
): ResponseRecord {
  const lines = typeof text === "string" ? null : text;
  const first = lines ? (lines[0] ?? "") : (text as string);
  const parsed = parseEnhancedCode(first);
  if (parsed === null) {
    const joined = lines ? lines.join("\n") : (text as string);
    return { code, enhanced_code: null, content: joined.replace(LINE_BREAKS, " "), command };
  }
  const all = lines ?? (text as string).split(LINE_BREAKS);
  if (all.length === 1) {
    return {
      code,
      enhanced_code: parsed.code,
      content: all[0].slice(parsed.rest).replace(LINE_BREAKS, " "),
      command,
    };
  }
  const prefix = all[0].slice(0, parsed.rest);
  const parts: string[] = [all[0].slice(parsed.rest)];
  for (let i = 1; i < all.length; i++) {
    const l = all[i];
    parts.push(l.startsWith(prefix) ? l.slice(prefix.length) : l);
  }
  return {
    code,
    enhanced_code: parsed.code,
    content: parts.join(" ").replace(LINE_BREAKS, " "),
    command,
  };
}
