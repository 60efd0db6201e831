/**
 * Spool ids: the 32-hex-char key of every message, in the spool and in logs.
 *
 * First stop on the mail's path: a message gets its id when it is created at
 * DATA time (or HTTP inject), and keeps it for life. The layout is a version-1
 * UUID (RFC 4122 §4.2: 60-bit timestamp of 100 ns ticks since 1582-10-15,
 * 14-bit clock sequence, 48-bit node) written without dashes, like KumoMTA's
 * `SpoolId`, so the creation time can be read back from the id alone (spool-in
 * uses it to estimate a message's age).
 *
 * Within one process the embedded timestamps strictly increase: ids made in
 * the same millisecond take consecutive 100 ns ticks. The node and clock
 * sequence are random, chosen once per process (multicast bit set, as RFC 4122
 * §4.5 asks for a node that is not a MAC address).
 *
 * Hot path (one call per message): no allocation beyond the result string.
 * Never does I/O.
 *
 * @module
 */

/** Milliseconds between the UUID epoch (1582-10-15) and the Unix epoch. */
const UUID_EPOCH_OFFSET_MS = 12_219_292_800_000;
const TICKS_PER_MS = 10_000;
const TWO_32 = 4_294_967_296;

/** Clock-sequence and node part: fixed per process ("cccc" + "nnnnnnnnnnnn"). */
const NODE_PART: string = (() => {
  const r = new Uint8Array(8);
  crypto.getRandomValues(r);
  r[0] = (r[0] & 0x3f) | 0x80; // RFC 4122 variant 10xx
  r[2] |= 0x01; // multicast bit: random node, not a MAC
  let s = "";
  for (let i = 0; i < 8; i++) s += r[i].toString(16).padStart(2, "0");
  return s;
})();

let lastMs = 0;
let lastSub = 0;

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, "0");
}

/**
 * Make a new spool id: 32 lowercase hex chars, time-based (UUID v1 layout).
 *
 * @example
 * ```ts
 * const id = newSpoolId(); // e.g. "d2c5b1e0a8f311ef8a3b13f2e4c5d6a7"
 * ```
 */
export function newSpoolId(): string {
  const now = Date.now();
  if (now > lastMs) {
    lastMs = now;
    lastSub = 0;
  } else if (++lastSub >= TICKS_PER_MS) {
    // More than 10,000 ids in one millisecond (or the clock went back):
    // borrow the next millisecond rather than repeat a timestamp.
    lastMs++;
    lastSub = 0;
  }
  const msPart = lastMs + UUID_EPOCH_OFFSET_MS; // < 2^45
  const msHi = Math.floor(msPart / TWO_32);
  const lowTicks = (msPart - msHi * TWO_32) * TICKS_PER_MS + lastSub; // exact, < 2^46
  const carry = Math.floor(lowTicks / TWO_32);
  const timeLow = lowTicks - carry * TWO_32;
  const ticksHi = msHi * TICKS_PER_MS + carry; // upper 28 bits of the 60-bit timestamp
  const timeMid = ticksHi & 0xffff;
  const timeHi = ((ticksHi >>> 16) & 0x0fff) | 0x1000; // version 1
  return hex(timeLow, 8) + hex(timeMid, 4) + hex(timeHi, 4) + NODE_PART;
}

/** True when `id` looks like a spool id (32 lowercase hex chars). */
export function isSpoolId(id: string): boolean {
  return /^[0-9a-f]{32}$/.test(id);
}

/**
 * The creation time (ms since the Unix epoch) encoded in a spool id.
 *
 * @example
 * ```ts
 * const created = spoolIdCreatedMs(newSpoolId()); // ≈ Date.now()
 * ```
 */
export function spoolIdCreatedMs(id: string): number {
  if (!isSpoolId(id)) throw new TypeError(`Cannot read time of spool id "${id}": not 32 hex chars`);
  const timeLow = parseInt(id.slice(0, 8), 16);
  const timeMid = parseInt(id.slice(8, 12), 16);
  const timeHi = parseInt(id.slice(12, 16), 16) & 0x0fff;
  const ticksHi = timeHi * 0x10000 + timeMid;
  // ticks = ticksHi * 2^32 + timeLow, divided by 10,000 without losing bits.
  const q1 = Math.floor(ticksHi / TICKS_PER_MS);
  const r1 = ticksHi - q1 * TICKS_PER_MS;
  const ms = q1 * TWO_32 + Math.floor((r1 * TWO_32 + timeLow) / TICKS_PER_MS);
  return ms - UUID_EPOCH_OFFSET_MS;
}
