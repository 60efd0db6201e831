/**
 * Trace headers of inbound SMTP mail (queues-and-delivery.md §9.5): the
 * `Received:` header and the base64 supplemental header (`X-KumoRef`).
 *
 * Place on the mail's path: the DATA phase prepends `Received:` to each
 * batch before `smtp_server_message_received` and the supplemental header
 * after it (so it ends up above `Received:`). Pure string building: never
 * touches the message or the socket.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { rfc2822Date } from "../../util/calendar.ts";

/** Inputs of {@link receivedHeaderValue}. */
export interface ReceivedInfo {
  /** EHLO/HELO argument, if any. */
  ehlo?: string;
  peerIp: string;
  /** Listener hostname. */
  hostname: string;
  localIp: string;
  /** `TLSv1.3` etc. when STARTTLS is active. */
  tlsVersion?: string;
  tlsCipher?: string;
  /** Authenticated (only counts with TLS: `ESMTPSA`). */
  authenticated: boolean;
  id: string;
  /** First recipient's address (without brackets). */
  recipient: string;
  /** Reception time, ms since the epoch. */
  epochMs: number;
}

/**
 * The folded value of the `Received:` header, byte-exact to upstream
 * (including the space before the CRLF ending the `by` line, and two spaces
 * before `id` with TLS).
 *
 * @example
 * ```ts
 * receivedHeaderValue({ ehlo: "c.test", peerIp: "127.0.0.1", hostname: "mx.test",
 *   localIp: "127.0.0.1", authenticated: false, id: "ab", recipient: "x@y.test", epochMs: 0 });
 * // "from c.test (127.0.0.1)\r\n  by mx.test (KumoMTA 127.0.0.1) \r\n  with ESMTP id ab for <x@y.test>;\r\n  Thu, 1 Jan 1970 00:00:00 +0000"
 * ```
 */
export function receivedHeaderValue(r: ReceivedInfo): string {
  const tls = r.tlsVersion !== undefined;
  const proto = tls ? (r.authenticated ? "ESMTPSA" : "ESMTPS") : "ESMTP";
  const tlsPart = tls ? ` (${r.tlsVersion}:${r.tlsCipher ?? ""}) ` : "";
  return `from ${r.ehlo || "unspecified"} (${r.peerIp})\r\n` +
    `  by ${r.hostname} (KumoMTA ${r.localIp}) \r\n` +
    `  with ${proto}${tlsPart} id ${r.id} for <${r.recipient}>;\r\n` +
    `  ${rfc2822Date(r.epochMs)}`;
}

/** Base64 characters on each line of the folded supplemental header. */
const FOLD_CHARS = 75;

/**
 * The folded value of the supplemental header, as upstream builds it: base64
 * (standard, padded) of the compact JSON `{"_@_":"\\_/","recipient":...}`
 * plus the listed meta values present, with the keys of every object sorted
 * (upstream serializes a sorted map: `{"_@_":…,"big":…,"recipient":…}`),
 * then cut into lines of 75 base64 characters joined by CRLF + TAB (the
 * first line too carries 75, whatever the header name's length).
 *
 * @example
 * ```ts
 * supplementalHeaderValue(["recip@example.com"], {}, []);
 * // "eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50IjoicmVjaXBAZXhhbXBsZS5jb20ifQ=="
 * ```
 */
export function supplementalHeaderValue(
  recipients: readonly string[],
  meta: Record<string, unknown>,
  includeMetaNames: readonly string[],
): string {
  const obj: Record<string, unknown> = {
    "_@_": "\\_/",
    recipient: recipients.length === 1 ? recipients[0] : recipients,
  };
  for (const name of includeMetaNames) {
    const v = meta[name];
    if (v !== undefined && v !== null) obj[name] = v;
  }
  const b64 = base64(sortedJson(obj));
  if (b64.length <= FOLD_CHARS) return b64;
  let out = b64.slice(0, FOLD_CHARS);
  for (let i = FOLD_CHARS; i < b64.length; i += FOLD_CHARS) {
    out += "\r\n\t" + b64.slice(i, i + FOLD_CHARS);
  }
  return out;
}

/** Compact JSON with the keys of every object in code point (= UTF-8 byte) order. */
function sortedJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => sortedJson(x ?? null)).join(",")}]`;
  if (typeof v === "object" && v !== null) {
    const keys = Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined);
    keys.sort(byCodePoint);
    return `{${
      keys.map((k) => `${JSON.stringify(k)}:${sortedJson((v as Record<string, unknown>)[k])}`)
        .join(",")
    }}`;
  }
  return JSON.stringify(v) ?? "null";
}

function byCodePoint(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/** Standard padded base64 of the UTF-8 bytes of `text` (native: no per-byte string). */
function base64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}
