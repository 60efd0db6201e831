/**
 * MIME leaf encoding for generated mail (http-api.md §3.2/§3.3): a body is
 * sent `7bit` when it is pure ASCII without over-long lines, otherwise as
 * quoted-printable or base64, whichever is smaller (RFC 2045 §6.7, §6.8);
 * plus the small header helpers the builder needs (mailbox rendering,
 * RFC 2047 encoding of non-ASCII values, folding).
 *
 * Place on the path: used by `mime_builder.ts` and `raw_content.ts` while the
 * inject endpoint builds each recipient's message. Pure functions over
 * bytes and strings.
 *
 * @module
 */

import { formatHeader } from "../message/headers.ts";
import { quotedPrintable } from "../util/quoted_printable.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** RFC 5322 §2.1.1 hard limit, without CRLF. */
const MAX_7BIT_LINE = 998;

/** A transfer-encoded body. */
export interface EncodedBody {
  /** `7bit`, `quoted-printable` or `base64`. */
  cte: "7bit" | "quoted-printable" | "base64";
  /** The encoded text, lines ending in CRLF (ends with CRLF unless empty). */
  text: string;
}

/** Whether the bytes are ASCII (no NUL) with CRLF-only line ends of at most 998 octets. */
function is7bit(bytes: Uint8Array): boolean {
  let line = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0 || b > 0x7f) return false;
    if (b === 0x0d) {
      if (bytes[i + 1] !== 0x0a) return false;
      line = 0;
      i++;
      continue;
    }
    if (b === 0x0a) return false;
    if (++line > MAX_7BIT_LINE) return false;
  }
  return true;
}

/**
 * Base64 with 76-character lines, each ending in CRLF.
 *
 * @example
 * ```ts
 * base64Lines(new TextEncoder().encode("hi")); // "aGk=\r\n"
 * ```
 */
export function base64Lines(bytes: Uint8Array): string {
  let out = "";
  // 57 input bytes → 76 output characters.
  for (let i = 0; i < bytes.length; i += 57) {
    const chunk = bytes.subarray(i, i + 57);
    let bin = "";
    for (let j = 0; j < chunk.length; j++) bin += String.fromCharCode(chunk[j]);
    out += btoa(bin) + "\r\n";
  }
  return out;
}

/** Bare LF and bare CR become CRLF. */
export function toCrlf(text: string): string {
  return text.replace(/\r\n|\r|\n/g, "\r\n");
}

/**
 * Choose the transfer encoding of a leaf body (§3.2): `7bit` when possible,
 * else the smaller of quoted-printable and base64 (base64 only for binary
 * data when `textual` is false).
 */
export function encodeBody(body: Uint8Array, textual: boolean): EncodedBody {
  if (is7bit(body)) {
    let text = dec.decode(body);
    if (text !== "" && !text.endsWith("\r\n")) text += "\r\n";
    return { cte: "7bit", text };
  }
  const b64 = base64Lines(body);
  if (!textual) return { cte: "base64", text: b64 };
  const qp = quotedPrintable(body);
  return qp.length <= b64.length
    ? { cte: "quoted-printable", text: qp }
    : { cte: "base64", text: b64 };
}

/** `us-ascii` or `utf-8` for a text body. */
export function charsetOf(body: Uint8Array): string {
  for (let i = 0; i < body.length; i++) if (body[i] > 0x7f) return "utf-8";
  return "us-ascii";
}

/** Whether text needs RFC 2047 encoding in a header. */
export function hasNonAscii(s: string): boolean {
  // deno-lint-ignore no-control-regex
  return /[^\x00-\x7f]/.test(s);
}

/**
 * A mailbox for `From`/`Reply-To`/`To`: `"Name" <email>` (the name quoted,
 * or RFC 2047-encoded when not ASCII), or the bare address without a name.
 *
 * @example
 * ```ts
 * formatMailbox("From", "Ana", "ana@x.test"); // '"Ana" <ana@x.test>'
 * ```
 */
export function formatMailbox(header: string, name: string | null, email: string): string {
  if (name === null || name === "") return email;
  if (hasNonAscii(name)) {
    // Phrase-safe encoded word(s); the helper folds at 76 columns.
    const line = dec.decode(formatHeader(header, name, true));
    const encoded = line.slice(header.length + 2, -2);
    return `${encoded} <${email}>`;
  }
  return `"${name.replace(/["\\]/g, "\\$&")}" <${email}>`;
}

/** One header line (folded, RFC 2047-encoded when not ASCII) with its CRLF, as text. */
export function headerLine(name: string, value: string): string {
  return dec.decode(formatHeader(name, value, true));
}

/** UTF-8 bytes of a string. */
export function utf8(s: string): Uint8Array {
  return enc.encode(s);
}
