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

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function pad2(n: number): string {
  return n < 10 ? "0" + n : String(n);
}

/**
 * RFC 2822 date in UTC, day of month unpadded: `Fri, 2 Jan 2026 03:04:05 +0000`.
 *
 * @example
 * ```ts
 * rfc2822Date(Date.UTC(2026, 0, 2, 3, 4, 5)); // "Fri, 2 Jan 2026 03:04:05 +0000"
 * ```
 */
export function rfc2822Date(epochMs: number): string {
  const d = new Date(epochMs);
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${
    MONTHS[d.getUTCMonth()]
  } ${d.getUTCFullYear()} ` +
    `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} +0000`;
}

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

/** Longest line of the folded supplemental header, in columns. */
const FOLD_COLUMNS = 75;

/**
 * The folded value of the supplemental header: base64 (standard, padded) of
 * `{"_@_":"\\_/","recipient":...}` plus the listed meta values present,
 * folded at 75 columns with a tab starting each continuation line.
 *
 * @example
 * ```ts
 * supplementalHeaderValue("X-KumoRef", ["a@b.test"], {}, []);
 * ```
 */
export function supplementalHeaderValue(
  headerName: string,
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
  const b64 = base64(JSON.stringify(obj));
  let first = FOLD_COLUMNS - headerName.length - 2;
  if (first < 1) first = 1;
  if (b64.length <= first) return b64;
  let out = b64.slice(0, first);
  for (let i = first; i < b64.length; i += FOLD_COLUMNS - 1) {
    out += "\r\n\t" + b64.slice(i, i + FOLD_COLUMNS - 1);
  }
  return out;
}

function base64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
  return btoa(bin);
}
