/**
 * PROXY protocol v2 header for outbound connections made through HAProxy
 * (`ha_proxy_server` + `ha_proxy_source_address` on an egress source).
 *
 * Place on the path: the SMTP client writes this header first on a
 * connection to the proxy, so the proxy connects on to the MX from the
 * requested source address. Pure encoding; never touches a socket.
 *
 * @module
 */

import ipaddr from "ipaddr.js";

const SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

/**
 * Encode a PROXY v2 `PROXY` command for a TCP stream from `source` to
 * `dest`. Both addresses must be the same family (an IPv4 source with an
 * IPv6 destination is sent as IPv4-mapped IPv6).
 *
 * @example
 * ```ts
 * const h = encodeProxyV2({ address: "10.0.0.1", port: 0 }, { address: "192.0.2.7", port: 25 });
 * h.length; // 28
 * ```
 */
export function encodeProxyV2(
  source: { address: string; port: number },
  dest: { address: string; port: number },
): Uint8Array {
  let src = ipaddr.parse(source.address);
  let dst = ipaddr.parse(dest.address);
  if (src.kind() !== dst.kind()) {
    if (src.kind() === "ipv4") src = (src as ipaddr.IPv4).toIPv4MappedAddress();
    if (dst.kind() === "ipv4") dst = (dst as ipaddr.IPv4).toIPv4MappedAddress();
  }
  const v4 = src.kind() === "ipv4";
  const addrLen = v4 ? 12 : 36;
  const out = new Uint8Array(16 + addrLen);
  out.set(SIGNATURE, 0);
  out[12] = 0x21; // version 2, PROXY
  out[13] = v4 ? 0x11 : 0x21; // TCP over IPv4 / IPv6
  out[14] = addrLen >> 8;
  out[15] = addrLen & 0xff;
  const sb = src.toByteArray();
  const db = dst.toByteArray();
  out.set(sb, 16);
  out.set(db, 16 + sb.length);
  const p = 16 + sb.length * 2;
  out[p] = (source.port >> 8) & 0xff;
  out[p + 1] = source.port & 0xff;
  out[p + 2] = (dest.port >> 8) & 0xff;
  out[p + 3] = dest.port & 0xff;
  return out;
}
