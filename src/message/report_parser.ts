/**
 * Report parsing: RFC 3464 delivery status notifications (DSN, "OOB"
 * bounces) and RFC 5965 abuse feedback reports (ARF), from a message's raw
 * bytes, into the shapes KumoMTA uses (`msg:parse_rfc3464()`,
 * `msg:parse_rfc5965()`, logs.md §3–§4).
 *
 * Place on the mail's path: beside the Message. The SMTP server's end of
 * DATA asks it whether a message to an OOB/ARF listener domain is a report
 * (src/smtp/server/report_handling.ts); policy asks through the two `msg:`
 * methods. The MIME structure is taken apart by `postal-mime`; the report
 * fields (RFC 822-style groups) are read here. Pure: never logs, never
 * touches the spool.
 *
 * @module
 */

import PostalMime from "postal-mime";
import { getAllHeaders } from "./headers.ts";

/** `name-type; name`, e.g. `dns; mx.example` (RFC 3464 §2.2.2). */
export interface RemoteMta {
  mta_type: string;
  name: string;
}

/** `address-type; address`, e.g. `rfc822; ana@example.com`. */
export interface ReportRecipient {
  recipient_type: string;
  recipient: string;
}

/** `Status: 5.1.1 comment`. */
export interface ReportStatus {
  class: number;
  subject: number;
  detail: number;
  comment: string | null;
}

/** `Diagnostic-Code: smtp; 550 5.1.1 user unknown`. */
export interface DiagnosticCode {
  diagnostic_type: string;
  diagnostic: string;
}

/** The per-message block of a DSN. */
export interface DsnPerMessage {
  original_envelope_id: string | null;
  reporting_mta: RemoteMta;
  dsn_gateway: RemoteMta | null;
  received_from_mta: RemoteMta | null;
  /** RFC 3339. */
  arrival_date: string | null;
  extensions: Record<string, string[]>;
}

/** One per-recipient block of a DSN. */
export interface DsnPerRecipient {
  final_recipient: ReportRecipient;
  /** `failed`, `delayed`, `delivered`, `relayed` or `expanded`. */
  action: string;
  status: ReportStatus;
  original_recipient: ReportRecipient | null;
  remote_mta: RemoteMta | null;
  diagnostic_code: DiagnosticCode | null;
  /** RFC 3339. */
  last_attempt_date: string | null;
  final_log_id: string | null;
  /** RFC 3339. */
  will_retry_until: string | null;
  extensions: Record<string, string[]>;
}

/** A parsed RFC 3464 report (`msg:parse_rfc3464()`). */
export interface DsnReport {
  per_message: DsnPerMessage;
  per_recipient: DsnPerRecipient[];
  /** The returned message or headers, CRLF → LF (bytes when not UTF-8). */
  original_message: OriginalMessage | null;
}

/**
 * A returned message (`message/rfc822` or `text/rfc822-headers` part), CRLF
 * → LF: a string when it is valid UTF-8, else its bytes as an array of
 * numbers, the way the log record emits it (logs.md §4).
 */
export type OriginalMessage = string | number[];

/** A parsed RFC 5965 report (`msg:parse_rfc5965()`, the record's `feedback_report`). */
export interface ArfReport {
  feedback_type: string;
  user_agent: string;
  version: string;
  arrival_date: string | null;
  incidents: number | null;
  original_envelope_id: string | null;
  original_mail_from: string | null;
  reporting_mta: RemoteMta | null;
  source_ip: string | null;
  authentication_results: string[];
  /** Spelled as upstream spells it. */
  original_rcpto_to: string[];
  reported_domain: string[];
  reported_uri: string[];
  extensions: Record<string, string[]>;
  original_message: OriginalMessage | null;
  supplemental_trace: Record<string, unknown> | null;
}

const ACTIONS = new Set(["failed", "delayed", "delivered", "relayed", "expanded"]);
const RETURNED_CONTENT = new Set([
  "message/rfc822",
  "text/rfc822-headers",
  "message/global",
  "message/global-headers",
]);
const DSN_PART = new Set(["message/delivery-status", "message/global-delivery-status"]);
/** The supplemental trace header marker (queues-and-delivery.md §9.5). */
const TRACE_MARKER = "\\_/";

const decoder = new TextDecoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

interface MimePart {
  type: string;
  /** The decoded body (transfer encoding undone). */
  bytes: Uint8Array;
  /** `bytes` as UTF-8 (invalid sequences replaced). */
  text: string;
}

interface MimeView {
  contentType: string;
  reportType: string | null;
  parts: MimePart[];
}

/** Bytes ↔ string one byte per character, so a regex can work on raw bytes. */
function latin1(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return out;
}

/** The top-level content type and the report's parts, or null when not multipart/report. */
async function mimeView(data: Uint8Array): Promise<MimeView | null> {
  // Cheap pre-check: only a multipart/report is worth a MIME parse.
  const head = decoder.decode(data.subarray(0, Math.min(data.length, 64 * 1024))).toLowerCase();
  if (!head.includes("multipart/report")) return null;
  const email = await PostalMime.parse(data, {
    forceRfc822Attachments: true,
    attachmentEncoding: "arraybuffer",
  });
  const ct = email.headers.find((h) => h.key === "content-type")?.value ?? "";
  const contentType = ct.split(";")[0].trim().toLowerCase();
  if (contentType !== "multipart/report") return null;
  const rt = /report-type\s*=\s*"?([^";\s]+)"?/i.exec(ct);
  const parts: MimePart[] = email.attachments.map((a) => {
    const bytes = typeof a.content === "string"
      ? encoder.encode(a.content)
      : new Uint8Array(a.content as ArrayBuffer);
    return { type: a.mimeType.toLowerCase(), bytes, text: decoder.decode(bytes) };
  });
  // postal-mime folds a text/rfc822-headers part without a disposition into `text`.
  if (!parts.some((p) => RETURNED_CONTENT.has(p.type)) && /text\/rfc822-headers/i.test(head)) {
    const m =
      /content-type:\s*text\/rfc822-headers[^\n]*\r?\n(?:[^\r\n]+\r?\n)*\r?\n([\s\S]*?)(?:\r?\n--|$)/i
        .exec(latin1(data));
    if (m) {
      const bytes = Uint8Array.from(m[1], (c) => c.charCodeAt(0));
      parts.push({ type: "text/rfc822-headers", bytes, text: decoder.decode(bytes) });
    }
  }
  return { contentType, reportType: rt ? rt[1].toLowerCase() : null, parts };
}

/** RFC 822-style fields of one group, names lower-cased, values in order. */
function fieldGroup(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const block = encoder.encode(text.replace(/\r?\n/g, "\r\n").replace(/(\r\n)*$/, "\r\n\r\n"));
  for (const { name, value } of getAllHeaders(block)) {
    const key = name.toLowerCase();
    const list = out.get(key);
    if (list) list.push(value.trim());
    else out.set(key, [value.trim()]);
  }
  return out;
}

function take(fields: Map<string, string[]>, name: string): string | null {
  const v = fields.get(name);
  if (v === undefined) return null;
  fields.delete(name);
  return v[0];
}

function takeAll(fields: Map<string, string[]>, name: string): string[] {
  const v = fields.get(name) ?? [];
  fields.delete(name);
  return v;
}

function required(fields: Map<string, string[]>, name: string): string {
  const v = take(fields, name);
  if (v === null) throw new SyntaxError(`Cannot parse report: required field "${name}" is missing`);
  return v;
}

function extensions(fields: Map<string, string[]>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const k of [...fields.keys()].sort()) out[k] = fields.get(k)!;
  return out;
}

function remoteMta(v: string | null): RemoteMta | null {
  if (v === null) return null;
  const i = v.indexOf(";");
  if (i < 0) throw new SyntaxError(`Cannot parse MTA "${v}": expected 'name-type; name'`);
  return { mta_type: v.slice(0, i).trim(), name: v.slice(i + 1).trim() };
}

function recipient(v: string | null): ReportRecipient | null {
  if (v === null) return null;
  const i = v.indexOf(";");
  if (i < 0) throw new SyntaxError(`Cannot parse recipient "${v}": expected 'type; address'`);
  const type = v.slice(0, i).trim();
  let addr = v.slice(i + 1).trim();
  if (type.toLowerCase() === "rfc822") addr = addr.replace(/^<(.*)>$/, "$1");
  return { recipient_type: type, recipient: addr };
}

function status(v: string): ReportStatus {
  const [code, ...rest] = v.split(" ");
  const m = /^(\d)\.(\d{1,3})\.(\d{1,3})$/.exec(code);
  if (!m) throw new SyntaxError(`Cannot parse Status "${v}": expected class.subject.detail`);
  return {
    class: Number(m[1]),
    subject: Number(m[2]),
    detail: Number(m[3]),
    comment: rest.length > 0 ? rest.join(" ") : null,
  };
}

function diagnostic(v: string | null): DiagnosticCode | null {
  if (v === null) return null;
  const i = v.indexOf(";");
  if (i < 0) return { diagnostic_type: "", diagnostic: v.trim() };
  return { diagnostic_type: v.slice(0, i).trim(), diagnostic: v.slice(i + 1).trim() };
}

/** RFC 2822 date → RFC 3339 (`2026-01-02T03:04:05Z`), as chrono prints it. */
function date(v: string | null): string | null {
  if (v === null) return null;
  const ms = Date.parse(v.replace(/\s*\([^)]*\)\s*$/, ""));
  if (Number.isNaN(ms)) throw new SyntaxError(`Cannot parse date "${v}": not an RFC 2822 date`);
  return new Date(ms).toISOString().replace(".000Z", "Z");
}

function originalMessage(parts: MimeView["parts"]): OriginalMessage | null {
  let out: OriginalMessage | null = null;
  for (const p of parts) {
    if (!RETURNED_CONTENT.has(p.type)) continue;
    const lf: number[] = [];
    const b = p.bytes;
    for (let i = 0; i < b.length; i++) {
      if (b[i] === 0x0d && b[i + 1] === 0x0a) continue;
      lf.push(b[i]);
    }
    const bytes = Uint8Array.from(lf);
    try {
      out = strictDecoder.decode(bytes);
    } catch {
      out = lf;
    }
  }
  return out;
}

/**
 * Parse an RFC 3464 delivery status report. Returns `null` when the message
 * is not a `multipart/report`.
 *
 * @throws {SyntaxError} when it is a `report-type=delivery-status` report
 * whose delivery-status part is missing, or a malformed delivery-status part.
 * @example
 * ```ts
 * const dsn = await parseRfc3464(msg.getData());
 * dsn?.per_recipient[0].status; // { class: 5, subject: 1, detail: 1, comment: null }
 * ```
 */
export async function parseRfc3464(data: Uint8Array): Promise<DsnReport | null> {
  const view = await mimeView(data);
  if (view === null) return null;
  const part = view.parts.find((p) => DSN_PART.has(p.type));
  if (part === undefined) {
    // Another kind of report (ARF, TLSRPT, or no report-type at all) is not
    // a DSN; only a declared delivery-status report without its part is broken.
    if (view.reportType !== "delivery-status") return null;
    throw new SyntaxError("Cannot parse delivery status report: delivery-status part missing");
  }
  const groups = part.text.replace(/\r\n/g, "\n").trim().split(/\n[ \t]*\n/).filter((g) =>
    g.trim() !== ""
  );
  if (groups.length === 0) {
    throw new SyntaxError("Cannot parse delivery status report: per-message section missing");
  }
  const pm = fieldGroup(groups[0]);
  const per_message: DsnPerMessage = {
    original_envelope_id: take(pm, "original-envelope-id"),
    reporting_mta: remoteMta(required(pm, "reporting-mta"))!,
    dsn_gateway: remoteMta(take(pm, "dsn-gateway")),
    received_from_mta: remoteMta(take(pm, "received-from-mta")),
    arrival_date: date(take(pm, "arrival-date")),
    extensions: {},
  };
  per_message.extensions = extensions(pm);
  const per_recipient = groups.slice(1).map((g): DsnPerRecipient => {
    const f = fieldGroup(g);
    const action = required(f, "action").toLowerCase();
    if (!ACTIONS.has(action)) throw new SyntaxError(`Cannot parse Action "${action}": unknown`);
    const entry: DsnPerRecipient = {
      final_recipient: recipient(required(f, "final-recipient"))!,
      action,
      status: status(required(f, "status")),
      original_recipient: recipient(take(f, "original-recipient")),
      remote_mta: remoteMta(take(f, "remote-mta")),
      diagnostic_code: diagnostic(take(f, "diagnostic-code")),
      last_attempt_date: date(take(f, "last-attempt-date")),
      final_log_id: take(f, "final-log-id"),
      will_retry_until: date(take(f, "will-retry-until")),
      extensions: {},
    };
    entry.extensions = extensions(f);
    return entry;
  });
  return { per_message, per_recipient, original_message: originalMessage(view.parts) };
}

/**
 * Decode the supplemental trace header (`X-KumoRef` by default) of an
 * original message: the first `X-…` header whose value, whitespace removed,
 * base64-decodes to JSON with `"_@_": "\\_/"`; the marker is dropped.
 *
 * @example
 * ```ts
 * decodeSupplementalTrace("X-KumoRef: eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50IjoiYUBiIn0=\n\n");
 * // { recipient: "a@b" }
 * ```
 */
export function decodeSupplementalTrace(
  original: OriginalMessage,
): Record<string, unknown> | null {
  if (typeof original !== "string") original = latin1(Uint8Array.from(original));
  const end = original.search(/\r?\n\r?\n/);
  const head = encoder.encode((end < 0 ? original : original.slice(0, end)) + "\r\n\r\n");
  for (const { name, value } of getAllHeaders(head)) {
    if (!/^x-/i.test(name)) continue;
    try {
      const bytes = Uint8Array.from(atob(value.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
      const obj = JSON.parse(decoder.decode(bytes));
      if (typeof obj !== "object" || obj === null || obj["_@_"] !== TRACE_MARKER) continue;
      delete obj["_@_"];
      return obj;
    } catch {
      continue;
    }
  }
  return null;
}

/**
 * Parse an RFC 5965 feedback report. Returns `null` when the message is not
 * a `multipart/report; report-type=feedback-report` with a
 * `message/feedback-report` part (RFC 5965 §2).
 *
 * @throws {SyntaxError} when a required field (Feedback-Type, User-Agent,
 * Version) is missing.
 * @example
 * ```ts
 * const arf = await parseRfc5965(msg.getData());
 * arf?.feedback_type; // "abuse"
 * ```
 */
export async function parseRfc5965(data: Uint8Array): Promise<ArfReport | null> {
  const view = await mimeView(data);
  if (view === null || view.reportType !== "feedback-report") return null;
  const part = view.parts.find((p) => p.type === "message/feedback-report");
  if (part === undefined) return null;
  const f = fieldGroup(part.text.replace(/\r\n/g, "\n").trim());
  const incidents = take(f, "incidents");
  const mailFrom = take(f, "original-mail-from");
  const original = originalMessage(view.parts);
  const report: ArfReport = {
    feedback_type: required(f, "feedback-type"),
    user_agent: required(f, "user-agent"),
    version: required(f, "version"),
    arrival_date: date(take(f, "arrival-date") ?? take(f, "received-date")),
    incidents: incidents !== null && /^\d+$/.test(incidents) ? Number(incidents) : null,
    original_envelope_id: take(f, "original-envelope-id"),
    original_mail_from: mailFrom === null ? null : mailFrom.replace(/^<(.*)>$/, "$1"),
    reporting_mta: remoteMta(take(f, "reporting-mta")),
    source_ip: take(f, "source-ip"),
    authentication_results: takeAll(f, "authentication-results"),
    original_rcpto_to: takeAll(f, "original-rcpt-to").map((a) => a.replace(/^<(.*)>$/, "$1")),
    reported_domain: takeAll(f, "reported-domain"),
    reported_uri: takeAll(f, "reported-uri"),
    extensions: {},
    original_message: original,
    supplemental_trace: original === null ? null : decodeSupplementalTrace(original),
  };
  f.delete("received-date");
  report.extensions = extensions(f);
  return report;
}
