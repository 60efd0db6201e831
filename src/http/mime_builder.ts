/**
 * The builder form of an inject request turned into one RFC 5322 message
 * (http-api.md §3.3): text/html/amp bodies as one leaf or a
 * `multipart/alternative`, inline attachments (with `content_id`) in a
 * `multipart/related`, other attachments in a `multipart/mixed`; root
 * headers sorted by name, then `To`, `MIME-Version` and `Date` when absent.
 *
 * Place on the path: the inject endpoint calls {@link buildMimeMessage} once
 * per recipient with the rendered texts. Pure: the caller decides what to do
 * with the bytes.
 *
 * @example
 * ```ts
 * const bytes = buildMimeMessage({ textBody: "hi", headers: [["Subject", "x"]], to: "a@b.test",
 *   attachments: [] });
 * ```
 *
 * @module
 */

import { rfc2822Date } from "../util/calendar.ts";
import { charsetOf, encodeBody, headerLine, utf8 } from "./mime_encoding.ts";

/** A decoded attachment ready to encode. */
export interface BuiltAttachment {
  contentType: string;
  data: Uint8Array;
  fileName: string | null;
  contentId: string | null;
}

/** The rendered pieces of one message. */
export interface MimeInput {
  textBody?: string | null;
  htmlBody?: string | null;
  ampHtmlBody?: string | null;
  /** Root headers (From, Reply-To, Subject and the `headers` map), rendered, unsorted. */
  headers: [string, string][];
  /** Ready `To` value; added unless `headers` has a `To`. */
  to: string;
  attachments: readonly BuiltAttachment[];
  /** @default Date.now() */
  nowMs?: number;
  /** Boundary generator (tests). @default random */
  boundary?: () => string;
}

/** One MIME entity ready to serialize. */
export interface Part {
  /** Header fields in order; a multipart's first is its Content-Type. */
  headers: [string, string][];
  /** Encoded body text (CRLF lines) or children for multiparts. */
  body: string | Part[];
  /** The boundary of a multipart (default: read from its first header). */
  boundary?: string;
  /** Header lines already formatted (with CRLF), written after `headers` verbatim. */
  rawHeaders?: string;
}

function randomBoundary(): string {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return "kumo-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * A text leaf: CRLF line ends, UTF-8, `charset="us-ascii"` or `"utf-8"`,
 * 7bit or the smaller of quoted-printable and base64; `params` are extra
 * Content-Type parameters (e.g. `; format=flowed`).
 *
 * @example
 * ```ts
 * textPart("plain", "café").headers; // [["Content-Type", 'text/plain; charset="utf-8"'], ["Content-Transfer-Encoding", "quoted-printable"]]
 * ```
 */
export function textPart(subtype: string, text: string, params = ""): Part {
  const bytes = utf8(text.replace(/\r\n|\r|\n/g, "\r\n"));
  const e = encodeBody(bytes, true);
  const headers: [string, string][] = [[
    "Content-Type",
    `text/${subtype}; charset="${charsetOf(bytes)}"${params}`,
  ]];
  if (e.cte !== "7bit") headers.push(["Content-Transfer-Encoding", e.cte]);
  return { headers, body: e.text };
}

function quoteParam(v: string): string {
  return `"${v.replace(/["\\\r\n]/g, (c) => (c === "\r" || c === "\n" ? " " : "\\" + c))}"`;
}

function attachmentPart(a: BuiltAttachment): Part {
  const textual = /^text\//i.test(a.contentType);
  const e = encodeBody(a.data, textual);
  let ct = a.contentType;
  if (a.fileName !== null && !/;\s*name=/i.test(ct)) ct += `; name=${quoteParam(a.fileName)}`;
  const headers: [string, string][] = [["Content-Type", ct]];
  if (e.cte !== "7bit") headers.push(["Content-Transfer-Encoding", e.cte]);
  const disp = a.contentId !== null ? "inline" : "attachment";
  headers.push([
    "Content-Disposition",
    a.fileName !== null ? `${disp}; filename=${quoteParam(a.fileName)}` : disp,
  ]);
  if (a.contentId !== null) headers.push(["Content-ID", `<${a.contentId.replace(/^<|>$/g, "")}>`]);
  return { headers, body: e.text };
}

function multipart(subtype: string, children: Part[], boundary: () => string): Part {
  return {
    headers: [["Content-Type", `multipart/${subtype}; boundary="${boundary()}"`]],
    body: children,
  };
}

function boundaryOf(p: Part): string {
  return p.boundary ?? /boundary="([^"]+)"/.exec(p.headers[0][1])![1];
}

/**
 * Append one entity (headers, blank line, body; children between their
 * delimiters) to `out` as CRLF text.
 *
 * @example
 * ```ts
 * const out: string[] = [];
 * serializePart({ headers: [["Content-Type", "text/plain"]], body: "hi\r\n" }, out);
 * out.join(""); // "Content-Type: text/plain\r\n\r\nhi\r\n"
 * ```
 */
export function serializePart(p: Part, out: string[]): void {
  for (const [n, v] of p.headers) out.push(headerLine(n, v));
  if (p.rawHeaders) out.push(p.rawHeaders);
  out.push("\r\n");
  serializeBody(p, out);
}

const serialize = serializePart;

function serializeBody(p: Part, out: string[]): void {
  if (typeof p.body === "string") {
    out.push(p.body);
    return;
  }
  const b = boundaryOf(p);
  for (const child of p.body) {
    out.push(`--${b}\r\n`);
    serialize(child, out);
  }
  out.push(`--${b}--\r\n`);
}

/**
 * Build the message bytes (CRLF line ends).
 *
 * @throws {TypeError} when neither text nor html body is given, or a
 * rendered header value is not a valid header
 */
export function buildMimeMessage(input: MimeInput): Uint8Array {
  const boundary = input.boundary ?? randomBoundary;
  const text = input.textBody ?? null;
  const html = input.htmlBody ?? null;
  const amp = input.ampHtmlBody ?? null;
  if (text === null && html === null) {
    throw new TypeError("Cannot build message: text_body or html_body is required");
  }
  const alternatives: Part[] = [];
  if (text !== null) alternatives.push(textPart("plain", text));
  if (amp !== null) alternatives.push(textPart("x-amp-html", amp));
  if (html !== null) alternatives.push(textPart("html", html));
  let content = alternatives.length === 1
    ? alternatives[0]
    : multipart("alternative", alternatives, boundary);
  const inline = input.attachments.filter((a) => a.contentId !== null);
  const attached = input.attachments.filter((a) => a.contentId === null);
  if (inline.length > 0) {
    content = multipart("related", [content, ...inline.map(attachmentPart)], boundary);
  }
  if (attached.length > 0) {
    content = multipart("mixed", [content, ...attached.map(attachmentPart)], boundary);
  }

  // Root headers: the content's own first, then the map sorted byte-wise.
  const sorted = input.headers.slice().sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const has = (n: string) => sorted.some(([k]) => k.toLowerCase() === n);
  const root: [string, string][] = [...content.headers, ...sorted];
  if (!has("to")) root.push(["To", input.to]);
  if (!has("mime-version")) root.push(["MIME-Version", "1.0"]);
  if (!has("date")) root.push(["Date", rfc2822Date(input.nowMs ?? Date.now())]);
  const out: string[] = [];
  serialize({ headers: root, body: content.body }, out);
  return utf8(out.join(""));
}
