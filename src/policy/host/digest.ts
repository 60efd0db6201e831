/**
 * `kumo.digest.*`: `sha1 sha256 sha384 sha512 md5 crc32(...)` over all
 * arguments (strings as bytes, anything else as its JSON text), and
 * `hmac_sha1 / hmac_sha256 / hmac_sha512(key, ...)`. Each returns a Digest
 * object: fields `hex`, `bytes`, `base32`, `base32_nopad`, `base32hex`,
 * `base32hex_nopad`, `base64`, `base64_nopad`, `base64url`,
 * `base64url_nopad`; `tostring(d)` is the hex form. `crc32` is the IEEE
 * checksum as 4 big-endian bytes.
 *
 * Place on the path: policy helpers; pure functions (node:crypto).
 *
 * @module
 */

import { createHash, createHmac } from "node:crypto";
import { bytesArg, luaBytes, registerLuaClass } from "./host_object.ts";
import { base32Encode, base64Encode, hexEncode } from "./encode.ts";

/** A digest value. */
export class LuaDigest {
  constructor(readonly bytes: Uint8Array) {}
}

registerLuaClass(LuaDigest, {
  name: "Digest",
  fields: (d, k) => {
    const b = d.bytes;
    switch (k) {
      case "hex":
        return hexEncode(b);
      case "bytes":
        return luaBytes(b);
      case "base32":
        return base32Encode(b);
      case "base32_nopad":
        return base32Encode(b, false, false);
      case "base32hex":
        return base32Encode(b, true);
      case "base32hex_nopad":
        return base32Encode(b, true, false);
      case "base64":
        return base64Encode(b);
      case "base64_nopad":
        return base64Encode(b, false, false);
      case "base64url":
        return base64Encode(b, true);
      case "base64url_nopad":
        return base64Encode(b, true, false);
      default:
        return undefined;
    }
  },
  meta: {
    __tostring: (d) => hexEncode(d.bytes),
    __eq: (d, o: unknown) => o instanceof LuaDigest && hexEncode(o.bytes) === hexEncode(d.bytes),
  },
});

function part(v: unknown): Uint8Array {
  if (typeof v === "string" || (typeof v === "object" && v !== null && "__bytes" in v)) {
    return bytesArg(v);
  }
  return new TextEncoder().encode(JSON.stringify(v ?? null));
}

let crcTable: Uint32Array | undefined;
function crc32(parts: Uint8Array[]): Uint8Array {
  const t = crcTable ??= (() => {
    const tbl = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      tbl[n] = c >>> 0;
    }
    return tbl;
  })();
  let c = 0xffffffff;
  for (const p of parts) for (const b of p) c = t[(c ^ b) & 0xff] ^ (c >>> 8);
  c = (c ^ 0xffffffff) >>> 0;
  return Uint8Array.of(c >>> 24, (c >>> 16) & 0xff, (c >>> 8) & 0xff, c & 0xff);
}

type Fn = (...args: never[]) => unknown;

const hash = (alg: string): Fn =>
  ((...args: unknown[]) => {
    const h = createHash(alg);
    for (const a of args) h.update(part(a));
    return new LuaDigest(new Uint8Array(h.digest()));
  }) as Fn;

const hmac = (alg: string): Fn =>
  ((key: unknown, ...args: unknown[]) => {
    const h = createHmac(alg, bytesArg(key, "HMAC key"));
    for (const a of args) h.update(part(a));
    return new LuaDigest(new Uint8Array(h.digest()));
  }) as Fn;

/** The `kumo.digest.*` functions. */
export const DIGEST_FUNCTIONS: Record<string, Fn> = {
  "digest.sha1": hash("sha1"),
  "digest.sha256": hash("sha256"),
  "digest.sha384": hash("sha384"),
  "digest.sha512": hash("sha512"),
  "digest.md5": hash("md5"),
  "digest.crc32": ((...args: unknown[]) => new LuaDigest(crc32(args.map(part)))) as Fn,
  "digest.hmac_sha1": hmac("sha1"),
  "digest.hmac_sha256": hmac("sha256"),
  "digest.hmac_sha512": hmac("sha512"),
};
