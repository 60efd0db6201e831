/**
 * `kumo.encode.*`: base64 / base64url / base32 / base32hex / hex encoders
 * and decoders (each with a `_nopad` variant where padding applies), and
 * `charset_encode` / `charset_decode` for the charsets TextDecoder knows.
 * The byte codecs here are shared with `kumo.digest`.
 *
 * Place on the path: policy helpers; pure functions, no I/O. Binary results
 * reach Lua byte-exact through the host-object glue (see host_object.ts).
 *
 * @module
 */

import { bytesArg, luaBytes, textArg } from "./host_object.ts";

const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const B32HEX = "0123456789ABCDEFGHIJKLMNOPQRSTUV";

/** Standard base64 (`url` → base64url), with or without `=` padding. */
export function base64Encode(b: Uint8Array, url = false, pad = true): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) {
    s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  }
  let out = btoa(s);
  if (url) out = out.replace(/\+/g, "-").replace(/\//g, "_");
  return pad ? out : out.replace(/=+$/, "");
}

/** Decode base64 or base64url; padding optional. */
export function base64Decode(text: string, url = false): Uint8Array {
  let t = text.replace(/\s+/g, "");
  if (url) {
    if (/[+/]/.test(t)) {
      throw new SyntaxError(`Cannot decode base64url "${text}": invalid character`);
    }
    t = t.replace(/-/g, "+").replace(/_/g, "/");
  } else if (/[-_]/.test(t)) {
    throw new SyntaxError(`Cannot decode base64 "${text}": invalid character`);
  }
  t = t.replace(/=+$/, "");
  if (t.length % 4 === 1) throw new SyntaxError(`Cannot decode base64 "${text}": invalid length`);
  t += "=".repeat((4 - (t.length % 4)) % 4);
  let bin: string;
  try {
    bin = atob(t);
  } catch {
    throw new SyntaxError(`Cannot decode base64 "${text}": invalid character`);
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** RFC 4648 base32 (`hex` → base32hex alphabet). */
export function base32Encode(b: Uint8Array, hex = false, pad = true): string {
  const alpha = hex ? B32HEX : B32;
  let out = "";
  let bits = 0, value = 0;
  for (const byte of b) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alpha[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alpha[(value << (5 - bits)) & 31];
  if (pad) { while (out.length % 8 !== 0) out += "="; }
  return out;
}

/** Decode RFC 4648 base32 / base32hex (case-insensitive, padding optional). */
export function base32Decode(text: string, hex = false): Uint8Array {
  const alpha = hex ? B32HEX : B32;
  const t = text.replace(/=+$/, "").toUpperCase();
  const out: number[] = [];
  let bits = 0, value = 0;
  for (const c of t) {
    const v = alpha.indexOf(c);
    if (v < 0) throw new SyntaxError(`Cannot decode base32 "${text}": invalid character "${c}"`);
    value = ((value << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Uint8Array.from(out);
}

/** Lower-case hex. */
export function hexEncode(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/** Decode hex (either case). */
export function hexDecode(text: string): Uint8Array {
  if (text.length % 2 !== 0 || /[^0-9a-fA-F]/.test(text)) {
    throw new SyntaxError(`Cannot decode hex "${text}": invalid hex string`);
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return out;
}

type Fn = (...args: never[]) => unknown;
const enc = (f: (b: Uint8Array) => string): Fn => ((v: unknown) => f(bytesArg(v))) as Fn;
const dec = (f: (s: string) => Uint8Array): Fn => ((v: unknown) => luaBytes(f(textArg(v)))) as Fn;

/** `charset_decode(charset, bytes)`: bytes in `charset` → text. */
function charsetDecode(charset: unknown, v: unknown): string {
  let d: TextDecoder;
  try {
    d = new TextDecoder(String(charset), { fatal: false });
  } catch {
    throw new RangeError(`Cannot decode charset "${charset}": unsupported charset`);
  }
  return d.decode(bytesArg(v));
}

/** `charset_encode(charset, text)`: UTF-8 only, plus single-byte latin1/us-ascii. */
function charsetEncode(charset: unknown, v: unknown): unknown {
  const cs = String(charset).toLowerCase().replace(/_/g, "-");
  const text = textArg(v);
  if (cs === "utf-8" || cs === "utf8") return text;
  if (["us-ascii", "ascii", "iso-8859-1", "latin1", "latin-1", "iso8859-1"].includes(cs)) {
    const max = cs.includes("ascii") ? 0x7f : 0xff;
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c > max) {
        throw new RangeError(`Cannot encode "${text}" as ${charset}: unmappable character`);
      }
      out[i] = c;
    }
    return luaBytes(out);
  }
  throw new RangeError(`Cannot encode charset "${charset}": unsupported charset`);
}

/** The `kumo.encode.*` functions. */
export const ENCODE_FUNCTIONS: Record<string, Fn> = {
  "encode.base64_encode": enc((b) => base64Encode(b)),
  "encode.base64_encode_nopad": enc((b) => base64Encode(b, false, false)),
  "encode.base64_decode": dec((s) => base64Decode(s)),
  "encode.base64_decode_nopad": dec((s) => base64Decode(s)),
  "encode.base64url_encode": enc((b) => base64Encode(b, true)),
  "encode.base64url_encode_nopad": enc((b) => base64Encode(b, true, false)),
  "encode.base64url_decode": dec((s) => base64Decode(s, true)),
  "encode.base64url_decode_nopad": dec((s) => base64Decode(s, true)),
  "encode.base32_encode": enc((b) => base32Encode(b)),
  "encode.base32_encode_nopad": enc((b) => base32Encode(b, false, false)),
  "encode.base32_decode": dec((s) => base32Decode(s)),
  "encode.base32_decode_nopad": dec((s) => base32Decode(s)),
  "encode.base32hex_encode": enc((b) => base32Encode(b, true)),
  "encode.base32hex_encode_nopad": enc((b) => base32Encode(b, true, false)),
  "encode.base32hex_decode": dec((s) => base32Decode(s, true)),
  "encode.base32hex_decode_nopad": dec((s) => base32Decode(s, true)),
  "encode.hex_encode": enc(hexEncode),
  "encode.hex_decode": dec(hexDecode),
  "encode.charset_decode": charsetDecode as Fn,
  "encode.charset_encode": charsetEncode as Fn,
};
