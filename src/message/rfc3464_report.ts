/**
 * RFC 3464 delivery status notifications built from a log record — the
 * engine of `kumo.generate_rfc3464_message` (lua-api.md §8), laid out as
 * upstream's `Report::generate`: a `multipart/report;
 * report-type="delivery-status"` with a human-readable `text/plain` part, a
 * `message/delivery-status` part (per-message fields, then one block per
 * recipient) and, on request, the original message (`message/rfc822`) or
 * its header (`text/rfc822-headers`).
 *
 * Place on the path: message. Pure: a report description in, RFC 5322
 * text out; the policy binding turns it into a Message. Reports are only
 * made for `Bounce` records of ESMTP deliveries (when `enableBounce`) and
 * `Expiration` records (when `enableExpiration`), never to the null sender.
 * Text parts are 7-bit when every line fits in 76 characters and is ASCII,
 * else quoted-printable (charset `utf-8` when not ASCII).
 *
 * @module
 */

import { quotedPrintable } from "../util/quoted_printable.ts";
import { rfc2822Date as rfc2822 } from "../util/calendar.ts";

/** What to return of the original message. */
export type IncludeOriginalMessage = "FullContent" | "HeadersOnly" | "No";

/** `PARAMS` of `generate_rfc3464_message`. */
export interface ReportParams {
  includeOriginalMessage: IncludeOriginalMessage;
  /** @default false */
  enableExpiration: boolean;
  /** @default false */
  enableBounce: boolean;
  /** `Reporting-MTA: <mtaType>; <name>`; `name` is also the From domain. */
  reportingMta: { mtaType: string; name: string };
  /** Fixed boundary and Message-ID, for tests. @default false */
  stableContent: boolean;
}

/** The fields of a log record the report uses. */
export interface ReportRecord {
  type: string;
  sender: string;
  recipients: string[];
  /** Message creation time, ms since the epoch. */
  createdMs: number;
  /** Time of the event, ms since the epoch. */
  timestampMs: number;
  response: {
    code: number;
    enhancedCode?: { class: number; subject: number; detail: number } | null;
    content: string;
  };
  peerAddress?: { name: string; addr: string } | null;
  deliveryProtocol?: string | null;
}

/** `550 5.7.1 text` on one line. */
function singleLine(r: ReportRecord["response"]): string {
  const enh = r.enhancedCode
    ? `${r.enhancedCode.class}.${r.enhancedCode.subject}.${r.enhancedCode.detail} `
    : "";
  return `${r.code} ${enh}${r.content.replace(/\r?\n/g, " ")}`;
}

/** The `Status:` value: the enhanced code (or one implied by the reply code) and the text. */
function status(r: ReportRecord["response"]): string {
  const e = r.enhancedCode ??
    { class: r.code >= 500 ? 5 : r.code >= 200 && r.code < 300 ? 2 : 4, subject: 0, detail: 0 };
  return `${e.class}.${e.subject}.${e.detail} ${r.content.replace(/\r?\n/g, " ")}`;
}

/** A text part: headers and body, 7-bit when possible. */
function textPart(contentType: string, text: string): string {
  // deno-lint-ignore no-control-regex
  const ascii = !/[^\x00-\x7f]/.test(text);
  const short = text.split("\r\n").every((l) => l.length <= 76);
  const head = `Content-Type: ${contentType};\r\n\tcharset="${ascii ? "us-ascii" : "utf-8"}"\r\n`;
  if (ascii && short) return `${head}\r\n${text}`;
  return `${head}Content-Transfer-Encoding: quoted-printable\r\n\r\n${
    quotedPrintable(new TextEncoder().encode(text))
  }`;
}

const withCrlf = (s: string) => (s === "" || s.endsWith("\r\n") ? s : s + "\r\n");

/** The header block (up to, not including, the blank line) of an RFC 5322 text. */
function headerBlock(original: string): string {
  const i = original.indexOf("\r\n\r\n");
  return i < 0 ? withCrlf(original) : original.slice(0, i + 2);
}

/**
 * Build the report, or `null` when none applies (null sender, record type
 * not enabled, a bounce that was not an ESMTP delivery).
 *
 * @param original the original message's RFC 5322 text (CRLF), when given
 *
 * @example
 * ```ts
 * const text = generateRfc3464Report(params, record, "Subject: hi\r\n\r\nbody\r\n");
 * ```
 */
export function generateRfc3464Report(
  params: ReportParams,
  record: ReportRecord,
  original?: string,
  uuid: () => string = () => crypto.randomUUID().replaceAll("-", ""),
): string | null {
  if (record.sender === "") return null;
  const isBounce = record.type === "Bounce" && params.enableBounce &&
    record.deliveryProtocol === "ESMTP";
  const isExpiration = record.type === "Expiration" && params.enableExpiration;
  if (!isBounce && !isExpiration) return null;

  const created = rfc2822(record.createdMs);
  const recipList = record.recipients.join(", ");
  const line = singleLine(record.response);
  let exposition = `The message was received at ${created}\r\n` +
    `from ${record.sender} and addressed to ${recipList}.\r\n`;
  if (isBounce) {
    exposition += record.peerAddress
      ? `While communicating with ${record.peerAddress.name} (${record.peerAddress.addr}):\r\n` +
        `Response: ${line}\r\n`
      : `Status: ${line}\r\n`;
    exposition += "\r\nThe message will be deleted from the queue.\r\n" +
      "No further attempts will be made to deliver it.\r\n";
  } else {
    exposition += `Status: ${line}\r\n` +
      "The message will be deleted from the queue.\r\n" +
      "No further attempts will be made to deliver it.\r\n";
  }

  let statusText =
    `Reporting-MTA: ${params.reportingMta.mtaType}; ${params.reportingMta.name}\r\n` +
    `Arrival-Date: ${created}\r\n\r\n`;
  for (const r of record.recipients) {
    statusText += `Final-Recipient: rfc822;${r}\r\nAction: failed\r\n` +
      `Status: ${status(record.response)}\r\n`;
    if (record.peerAddress) statusText += `Remote-MTA: dns; ${record.peerAddress.name}\r\n`;
    statusText += `Diagnostic-Code: smtp; ${line}\r\n` +
      `Last-Attempt-Date: ${rfc2822(record.timestampMs)}\r\n\r\n`;
  }

  const parts = [
    textPart("text/plain", exposition),
    textPart("message/delivery-status", statusText),
  ];
  if (original !== undefined && params.includeOriginalMessage === "HeadersOnly") {
    parts.push(`Content-Type: text/rfc822-headers\r\n\r\n${headerBlock(original)}`);
  } else if (original !== undefined && params.includeOriginalMessage === "FullContent") {
    parts.push(`Content-Type: message/rfc822\r\n\r\n${withCrlf(original)}`);
  }

  const boundary = params.stableContent ? "report-boundary" : `report-${uuid()}`;
  const messageId = `<${params.stableContent ? "UUID" : uuid()}@${params.reportingMta.name}>`;
  let out = `Content-Type: multipart/report;\r\n\tboundary="${boundary}";\r\n` +
    `\treport-type="delivery-status"\r\n` +
    "Subject: Returned mail\r\n" +
    "MIME-Version: 1.0\r\n" +
    `Message-ID: ${messageId}\r\n` +
    `To: ${record.sender}\r\n` +
    `From: Mail Delivery Subsystem <mailer-daemon@${params.reportingMta.name}>\r\n\r\n`;
  for (const p of parts) out += `--${boundary}\r\n${p}`;
  return out + `--${boundary}--\r\n`;
}
