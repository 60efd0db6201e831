/**
 * HAProxy PROXY protocol header (v1 text and v2 binary), as sent by a load
 * balancer before the SMTP conversation (`require_proxy_protocol`,
 * lua-api.md §5.1).
 *
 * Place on the mail's path: the session reads it before the banner and
 * replaces the socket's peer and local addresses with the ones it carries,
 * so relay checks, `peer`/`via` overrides, conn meta and logs see the real
 * client. Pure parsing: bytes in, addresses out; never touches a socket.
 *
 * @module
 */

/** An address carried by the header. */
export interface ProxyEndpoint {
  ip: string;
  port: number;
}

/** Result of {@linkcode parseProxyHeader}. */
export type ProxyParse =
  | { kind: "incomplete" }
  | { kind: "error"; message: string }
  /** `source`/`dest` absent for `PROXY UNKNOWN` and v2 `LOCAL` (keep the socket's). */
  | { kind: "ok"; consumed: number; source?: ProxyEndpoint; dest?: ProxyEndpoint };

/** v2 signature: `\r\n\r\n\0\r\nQUIT\n`. */
const V2_SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
/** A v1 line is at most 107 bytes including CRLF. */
const V1_MAX = 107;
const V1_PREFIX = "PROXY ";
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6_RE = /^[0-9a-fA-F:.]{2,45}$/;
const PORT_RE = /^(0|[1-9]\d{0,4})$/;

/** Maximum bytes the header may take (v2 header plus its longest address block). */
export const PROXY_HEADER_MAX = 16 + 65535;

/**
 * Parse a PROXY header at the start of `buf`.
 *
 * @example
 * ```ts
 * const r = parseProxyHeader(new TextEncoder().encode("PROXY TCP4 192.0.2.1 127.0.0.1 4000 25\r\nEHLO"));
 * // { kind: "ok", consumed: 40, source: { ip: "192.0.2.1", port: 4000 }, dest: { ip: "127.0.0.1", port: 25 } }
 * ```
 */
export function parseProxyHeader(buf: Uint8Array): ProxyParse {
  if (buf.length === 0) return { kind: "incomplete" };
  if (buf[0] === 0x0d) return parseV2(buf);
  for (let i = 0; i < V1_PREFIX.length && i < buf.length; i++) {
    if (buf[i] !== V1_PREFIX.charCodeAt(i)) return { kind: "error", message: "not a PROXY header" };
  }
  let end = -1;
  for (let i = 0; i + 1 < buf.length && i < V1_MAX; i++) {
    if (buf[i] === 0x0d && buf[i + 1] === 0x0a) {
      end = i;
      break;
    }
  }
  if (end < 0) {
    return buf.length >= V1_MAX
      ? { kind: "error", message: "PROXY v1 line too long" }
      : { kind: "incomplete" };
  }
  let line = "";
  for (let i = 0; i < end; i++) line += String.fromCharCode(buf[i]);
  const parts = line.split(" ");
  if (parts[1] === "UNKNOWN") return { kind: "ok", consumed: end + 2 };
  if (parts.length !== 6 || (parts[1] !== "TCP4" && parts[1] !== "TCP6")) {
    return { kind: "error", message: `bad PROXY v1 line "${line}"` };
  }
  const ipRe = parts[1] === "TCP4" ? IPV4_RE : IPV6_RE;
  if (!ipRe.test(parts[2]) || !ipRe.test(parts[3])) {
    return { kind: "error", message: `bad PROXY v1 address in "${line}"` };
  }
  if (!PORT_RE.test(parts[4]) || !PORT_RE.test(parts[5])) {
    return { kind: "error", message: `bad PROXY v1 port in "${line}"` };
  }
  const sport = Number(parts[4]);
  const dport = Number(parts[5]);
  if (sport > 65535 || dport > 65535) {
    return { kind: "error", message: `bad PROXY v1 port in "${line}"` };
  }
  return {
    kind: "ok",
    consumed: end + 2,
    source: { ip: parts[2].toLowerCase(), port: sport },
    dest: { ip: parts[3].toLowerCase(), port: dport },
  };
}

function parseV2(buf: Uint8Array): ProxyParse {
  for (let i = 0; i < V2_SIG.length && i < buf.length; i++) {
    if (buf[i] !== V2_SIG[i]) return { kind: "error", message: "not a PROXY header" };
  }
  if (buf.length < 16) return { kind: "incomplete" };
  const verCmd = buf[12];
  if (verCmd >> 4 !== 2) return { kind: "error", message: "unsupported PROXY v2 version" };
  const cmd = verCmd & 0x0f;
  const fam = buf[13];
  const len = (buf[14] << 8) | buf[15];
  if (buf.length < 16 + len) return { kind: "incomplete" };
  const consumed = 16 + len;
  if (cmd === 0) return { kind: "ok", consumed }; // LOCAL: health check, keep the socket's
  if (cmd !== 1) return { kind: "error", message: "unsupported PROXY v2 command" };
  const body = buf.subarray(16, 16 + len);
  if (fam === 0x11 && len >= 12) {
    const ip4 = (o: number) => `${body[o]}.${body[o + 1]}.${body[o + 2]}.${body[o + 3]}`;
    return {
      kind: "ok",
      consumed,
      source: { ip: ip4(0), port: (body[8] << 8) | body[9] },
      dest: { ip: ip4(4), port: (body[10] << 8) | body[11] },
    };
  }
  if (fam === 0x21 && len >= 36) {
    return {
      kind: "ok",
      consumed,
      source: { ip: ip6(body, 0), port: (body[32] << 8) | body[33] },
      dest: { ip: ip6(body, 16), port: (body[34] << 8) | body[35] },
    };
  }
  if ((fam & 0xf0) === 0) return { kind: "ok", consumed }; // AF_UNSPEC
  return { kind: "error", message: `unsupported PROXY v2 address family 0x${fam.toString(16)}` };
}

/** RFC 5952 text of 16 bytes at `o` (zero run compressed, IPv4-mapped kept dotted). */
function ip6(b: Uint8Array, o: number): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((b[o + 2 * i] << 8) | b[o + 2 * i + 1]);
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return `::ffff:${b[o + 12]}.${b[o + 13]}.${b[o + 14]}.${b[o + 15]}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}
