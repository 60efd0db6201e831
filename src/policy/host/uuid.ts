/**
 * `kumo.uuid.*`: `new_v1`, `new_v4`, `new_v6`, `new_v7`, `parse(text)`.
 * Each returns a Uuid object: fields `hyphenated`, `simple`, `braced`,
 * `urn`, `bytes`; `tostring(u)` is the hyphenated form; `==` compares.
 *
 * Place on the path: policy helpers; no I/O. v1/v6 use a random node id
 * (multicast bit set, RFC 9562 §6.10) and a random clock sequence chosen
 * once per process; v7 is millisecond time plus random bits.
 *
 * @module
 */

import { luaBytes, registerLuaClass } from "./host_object.ts";
import { hexDecode, hexEncode } from "./encode.ts";

/** A UUID's 16 bytes. */
export class LuaUuid {
  constructor(readonly bytes: Uint8Array) {}
  /** `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`. */
  get hyphenated(): string {
    const h = hexEncode(this.bytes);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${
      h.slice(20)
    }`;
  }
}

registerLuaClass(LuaUuid, {
  name: "Uuid",
  fields: (u, k) => {
    switch (k) {
      case "hyphenated":
        return u.hyphenated;
      case "simple":
        return hexEncode(u.bytes);
      case "braced":
        return `{${u.hyphenated}}`;
      case "urn":
        return `urn:uuid:${u.hyphenated}`;
      case "bytes":
        return luaBytes(u.bytes);
      default:
        return undefined;
    }
  },
  meta: {
    __tostring: (u) => u.hyphenated,
    __eq: (u, o: unknown) => o instanceof LuaUuid && o.hyphenated === u.hyphenated,
  },
});

const node = crypto.getRandomValues(new Uint8Array(6));
node[0] |= 0x01;
const clockSeq = crypto.getRandomValues(new Uint16Array(1))[0] & 0x3fff;
let lastTicks = 0n;

/** 100 ns ticks since 1582-10-15, strictly increasing within the process. */
function gregorianTicks(): bigint {
  let t = BigInt(Date.now()) * 10_000n + 0x01b21dd213814000n;
  if (t <= lastTicks) t = lastTicks + 1n;
  lastTicks = t;
  return t;
}

function finish(b: Uint8Array, version: number): LuaUuid {
  b[6] = (b[6] & 0x0f) | (version << 4);
  b[8] = (b[8] & 0x3f) | 0x80;
  return new LuaUuid(b);
}

function withClockAndNode(b: Uint8Array): void {
  b[8] = clockSeq >> 8;
  b[9] = clockSeq & 0xff;
  b.set(node, 10);
}

/** RFC 9562 version 1. */
export function uuidV1(): LuaUuid {
  const t = gregorianTicks();
  const b = new Uint8Array(16);
  const low = Number(t & 0xffffffffn), mid = Number((t >> 32n) & 0xffffn);
  const hi = Number((t >> 48n) & 0x0fffn);
  new DataView(b.buffer).setUint32(0, low);
  new DataView(b.buffer).setUint16(4, mid);
  new DataView(b.buffer).setUint16(6, hi);
  withClockAndNode(b);
  return finish(b, 1);
}

/** RFC 9562 version 6 (v1 with the time fields in sortable order). */
export function uuidV6(): LuaUuid {
  const t = gregorianTicks();
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, Number((t >> 28n) & 0xffffffffn));
  dv.setUint16(4, Number((t >> 12n) & 0xffffn));
  dv.setUint16(6, Number(t & 0x0fffn));
  withClockAndNode(b);
  return finish(b, 6);
}

/** RFC 9562 version 7. */
export function uuidV7(): LuaUuid {
  const b = crypto.getRandomValues(new Uint8Array(16));
  const ms = BigInt(Date.now());
  for (let i = 0; i < 6; i++) b[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  return finish(b, 7);
}

/** Parse hyphenated, simple, braced or urn forms. */
export function parseUuid(text: unknown): LuaUuid {
  const s = String(text).trim();
  const m =
    /^(?:urn:uuid:|\{)?([0-9a-fA-F]{8})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{12})\}?$/
      .exec(s);
  if (!m || (s.startsWith("{") !== s.endsWith("}"))) {
    throw new SyntaxError(`Cannot parse UUID "${s}": invalid format`);
  }
  return new LuaUuid(hexDecode(m.slice(1).join("")));
}

type Fn = (...args: never[]) => unknown;

/** The `kumo.uuid.*` functions. */
export const UUID_FUNCTIONS: Record<string, Fn> = {
  "uuid.new_v1": uuidV1 as Fn,
  "uuid.new_v4": (() => parseUuid(crypto.randomUUID())) as Fn,
  "uuid.new_v6": uuidV6 as Fn,
  "uuid.new_v7": uuidV7 as Fn,
  "uuid.parse": parseUuid as Fn,
};
