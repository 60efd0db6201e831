/**
 * LineReader: the server's input framing state machine. Fed raw byte chunks,
 * it yields command lines (command mode) or one whole message body (data
 * mode, entered by the server after it sends 354).
 *
 * Place on the mail's path: between the inbound socket and
 * `smtp/server/`'s session. It knows framing only — line limits, dot
 * unstuffing, `CRLF.CRLF`, size and line-ending checks — never what a command
 * means, and it never touches sockets (so it is tested by feeding bytes).
 *
 * Pull model: `push(chunk)` queues bytes, `next()` returns the next event or
 * `null` when more bytes are needed. The server handles each event before
 * asking for the next, so pipelined commands are processed strictly in order
 * and a mode switch (`startData()` after `DATA`) applies exactly at the right
 * byte; whatever follows the end-of-data terminator stays queued for command
 * mode.
 *
 * Ownership: chunks are kept by reference (the body is assembled from
 * sub-arrays of them without copying); do not reuse a pushed buffer.
 *
 * Data-mode rules (queues-and-delivery.md §9.4, RFC 5321 §4.5.2):
 * - a line starting with `.` loses that dot, on every line including the first;
 * - the body ends at `CRLF.CRLF` (or `.CRLF` as the very first line); only a
 *   true CRLF before the dot counts, so `LF.CRLF` / `CR.CR` never end it
 *   (no SMTP smuggling);
 * - line length (excluding the CRLF) is checked against the hard limit,
 *   size against `maxMessageSize` (nothing is buffered past it), bare CR/LF per
 *   `invalidLineEndings`; problems are reported with the body, never early.
 *
 * @module
 */

/** How bare CR / bare LF in DATA are handled (listener `invalid_line_endings`). */
export type InvalidLineEndings = "Deny" | "Allow" | "Fix";

/** Options for {@link LineReader}. */
export interface LineReaderOptions {
  /** Longest line accepted, excluding CRLF. @default 998 */
  lineLengthHardLimit?: number;
  /** Largest body accepted, in bytes (after unstuffing). @default 20 MiB */
  maxMessageSize?: number;
  /** Bare CR/LF in DATA: report (`Deny`), keep (`Allow`) or convert to CRLF (`Fix`). @default "Deny" */
  invalidLineEndings?: InvalidLineEndings;
}

/** A command line, decoded as UTF-8, without its line ending. */
export interface LineEvent {
  kind: "line";
  line: string;
}
/** A command line over the hard limit; its bytes up to the next LF are skipped. */
export interface TooLongEvent {
  kind: "too_long";
}
/** A command line that is not valid UTF-8 (the raw bytes are given for logging). */
export interface InvalidUtf8Event {
  kind: "invalid_utf8";
  bytes: Uint8Array;
}
/** The worst problem found in a message body, in reply priority order. */
export type DataProblem = "too_long" | "too_big" | "bad_line_endings";
/** A complete message body (reader is back in command mode). */
export interface DataEvent {
  kind: "data";
  /** Body with CRLF line endings (unless `Allow`), unstuffed, without the final `.` line. Empty when `tooBig`. */
  body: Uint8Array;
  /** Body size in bytes, counted to the end even past the limit. */
  size: number;
  /** Some line exceeded the hard limit → `500 5.2.3`. */
  tooLong: boolean;
  /** Size exceeded `maxMessageSize` → `552 5.3.4`. */
  tooBig: boolean;
  /** Bare CR or LF seen under `Deny` → `552 5.6.0`. */
  badLineEndings: boolean;
  /** First of the above that applies, or `null` when the body is acceptable. */
  problem: DataProblem | null;
}
/** What {@link LineReader.next} yields. */
export type ReaderEvent = LineEvent | TooLongEvent | InvalidUtf8Event | DataEvent;

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const CRLF = new Uint8Array([CR, LF]);
const EMPTY = new Uint8Array(0);
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The framing state machine; one per connection.
 *
 * @example
 * ```ts
 * const r = new LineReader();
 * r.push(new TextEncoder().encode("DATA\r\nhi\r\n.\r\nQUIT\r\n"));
 * r.next(); // { kind: "line", line: "DATA" }
 * r.startData();
 * r.next(); // { kind: "data", body: "hi\r\n" bytes, ... }
 * r.next(); // { kind: "line", line: "QUIT" }
 * ```
 */
export class LineReader {
  readonly #limit: number;
  readonly #maxSize: number;
  readonly #endings: InvalidLineEndings;

  /** Queued, unconsumed chunks; the first is consumed from `#off`. */
  #queue: Uint8Array[] = [];
  #off = 0;
  #mode: "command" | "data" = "command";
  /** Command mode: discarding the rest of an over-long line up to its LF. */
  #skipping = false;

  // Data-mode state (reset by startData).
  #parts: Uint8Array[] = [];
  #size = 0;
  #tooLong = false;
  #tooBig = false;
  #badEndings = false;
  #atLineStart = true;
  /** The previous line ended with a real CRLF (or the body just started). */
  #prevCrlf = true;
  /** Wire bytes of the current line so far (excluding its line ending). */
  #lineLen = 0;
  /** Undecided bytes carried to the next chunk: ".", ".\r" at a line start, or a trailing "\r". */
  #held: Uint8Array | null = null;

  constructor(options: LineReaderOptions = {}) {
    this.#limit = options.lineLengthHardLimit ?? 998;
    this.#maxSize = options.maxMessageSize ?? 20 * 1024 * 1024;
    this.#endings = options.invalidLineEndings ?? "Deny";
  }

  /** `"command"` or `"data"`. */
  get mode(): "command" | "data" {
    return this.#mode;
  }

  /** Number of received bytes not yet consumed. */
  get bufferedLength(): number {
    let n = 0;
    for (const c of this.#queue) n += c.length;
    return n - this.#off;
  }

  /**
   * Remove and return every unconsumed byte. After STARTTLS the server must
   * discard what the client sent before the handshake (RFC 3207 §4.2).
   */
  takeBuffered(): Uint8Array {
    const q = this.#queue;
    const out = q.length === 0
      ? EMPTY
      : q.length === 1
      ? q[0].subarray(this.#off)
      : concat([q[0].subarray(this.#off), ...q.slice(1)]);
    this.#queue = [];
    this.#off = 0;
    return out;
  }

  /** Queue received bytes (kept by reference). */
  push(chunk: Uint8Array): void {
    if (chunk.length > 0) this.#queue.push(chunk);
  }

  /**
   * Switch to data mode; call after sending `354`. Bytes already queued
   * after the DATA line become the start of the body.
   */
  startData(): void {
    if (this.#mode === "data") throw new Error(`Cannot start DATA: already in data mode`);
    this.#mode = "data";
    this.#parts = [];
    this.#size = 0;
    this.#tooLong = false;
    this.#tooBig = false;
    this.#badEndings = false;
    this.#atLineStart = true;
    this.#prevCrlf = true;
    this.#lineLen = 0;
    this.#held = null;
  }

  /** The next event, or `null` when more bytes are needed. */
  next(): ReaderEvent | null {
    return this.#mode === "command" ? this.#nextCommand() : this.#nextData();
  }

  // ---- command mode -------------------------------------------------------

  #nextCommand(): ReaderEvent | null {
    for (;;) {
      const q = this.#queue;
      if (q.length === 0) return null;
      const buf = q[0];
      const start = this.#off;
      const lf = buf.indexOf(LF, start);
      if (lf < 0) {
        if (this.#skipping) {
          this.#drop(buf.length);
          continue;
        }
        // +1: a trailing CR may still be followed by its LF.
        if (buf.length - start > this.#limit + 1) {
          this.#skipping = true;
          this.#drop(buf.length);
          return { kind: "too_long" };
        }
        if (q.length === 1) return null;
        // A line split across chunks: merge the (short) tail with the next chunk.
        q.splice(0, 2, concat([buf.subarray(start), q[1]]));
        this.#off = 0;
        continue;
      }
      this.#drop(lf + 1);
      if (this.#skipping) {
        this.#skipping = false;
        continue;
      }
      const end = lf > start && buf[lf - 1] === CR ? lf - 1 : lf;
      if (end - start > this.#limit) return { kind: "too_long" };
      const bytes = buf.subarray(start, end);
      try {
        return { kind: "line", line: utf8.decode(bytes) };
      } catch {
        return { kind: "invalid_utf8", bytes };
      }
    }
  }

  /** Consume the first chunk up to `end`. */
  #drop(end: number): void {
    if (end >= this.#queue[0].length) {
      this.#queue.shift();
      this.#off = 0;
    } else {
      this.#off = end;
    }
  }

  // ---- data mode ----------------------------------------------------------

  #nextData(): ReaderEvent | null {
    const q = this.#queue;
    while (q.length > 0) {
      const chunk = this.#off === 0 ? q[0] : q[0].subarray(this.#off);
      const used = this.#feed(chunk);
      if (used < 0) {
        q.shift();
        this.#off = 0;
        continue;
      }
      this.#off += used;
      if (this.#off >= q[0].length) {
        q.shift();
        this.#off = 0;
      }
      return this.#finish();
    }
    return null;
  }

  /** Scan one chunk; returns the index just past the terminator, or -1 if it was all body. */
  #feed(chunk: Uint8Array): number {
    let off = 0;
    // Resolve bytes held from the previous chunk by re-scanning them with up
    // to 3 new bytes (a tiny copy; it only happens at awkward chunk boundaries).
    while (this.#held !== null && off < chunk.length) {
      const held = this.#held;
      this.#held = null;
      const take = Math.min(3, chunk.length - off);
      const tiny = concat([held, chunk.subarray(off, off + take)]);
      const r = this.#scan(tiny);
      if (r >= 0) return off + r - held.length;
      off += take;
    }
    if (off >= chunk.length) return -1;
    const r = this.#scan(off === 0 ? chunk : chunk.subarray(off));
    return r < 0 ? -1 : off + r;
  }

  #finish(): DataEvent {
    const size = this.#size;
    const body = this.#tooBig
      ? EMPTY
      : this.#parts.length === 1
      ? this.#parts[0]
      : concat(this.#parts, size);
    const problem: DataProblem | null = this.#tooLong
      ? "too_long"
      : this.#tooBig
      ? "too_big"
      : this.#badEndings
      ? "bad_line_endings"
      : null;
    const ev: DataEvent = {
      kind: "data",
      body,
      size,
      tooLong: this.#tooLong,
      tooBig: this.#tooBig,
      badLineEndings: this.#badEndings,
      problem,
    };
    this.#parts = [];
    this.#mode = "command";
    return ev;
  }

  /** Append body bytes `buf[a, b)`; counts size, stops buffering past the limit. */
  #emit(buf: Uint8Array, a: number, b: number): void {
    const n = b - a;
    if (n <= 0) return;
    this.#size += n;
    if (this.#tooBig) return;
    if (this.#size > this.#maxSize) {
      this.#tooBig = true;
      this.#parts = [];
      return;
    }
    this.#parts.push(a === 0 && b === buf.length ? buf : buf.subarray(a, b));
  }

  /** A bare CR or LF at `i`: returns the new segment start. */
  #bareEnding(buf: Uint8Array, seg: number, i: number): number {
    if (this.#endings === "Deny") this.#badEndings = true;
    else if (this.#endings === "Fix") {
      this.#emit(buf, seg, i);
      this.#emit(CRLF, 0, 2);
      return i + 1;
    }
    return seg;
  }

  /**
   * Hot path: scan body bytes with indexOf, no per-line allocation.
   * Returns the index just past the terminator, or -1 (state carried over).
   */
  #scan(buf: Uint8Array): number {
    const n = buf.length;
    const limit = this.#limit;
    let p = 0;
    let seg = 0; // start of the body segment not yet emitted
    let nextCr = -2; // cached buf.indexOf(CR, ...); -1 = none left
    while (p < n) {
      if (this.#atLineStart && buf[p] === DOT) {
        if (p + 1 >= n) return this.#hold(buf, seg, p);
        const b1 = buf[p + 1];
        if (b1 === DOT) {
          // Dot-stuffed line: drop the first dot (RFC 5321 §4.5.2).
          this.#emit(buf, seg, p);
          seg = p + 1;
          p += 1;
          this.#lineLen = 1;
        } else if (b1 === CR) {
          if (p + 2 >= n) return this.#hold(buf, seg, p);
          if (buf[p + 2] === LF && this.#prevCrlf) {
            this.#emit(buf, seg, p);
            return p + 3;
          }
        }
      }
      this.#atLineStart = false;

      const lf = buf.indexOf(LF, p);
      const end = lf < 0 ? n : lf;
      if (nextCr !== -1 && nextCr < p) nextCr = buf.indexOf(CR, p);
      // Every CR before end-1 is bare; one at end-1 is either CRLF or (no LF) undecided.
      while (nextCr !== -1 && nextCr < end - 1) {
        seg = this.#bareEnding(buf, seg, nextCr);
        nextCr = buf.indexOf(CR, nextCr + 1);
      }
      if (lf < 0) {
        if (nextCr === n - 1) {
          this.#lineLen += n - 1 - p;
          if (this.#lineLen > limit) this.#tooLong = true;
          return this.#hold(buf, seg, n - 1);
        }
        this.#lineLen += n - p;
        if (this.#lineLen > limit) this.#tooLong = true;
        this.#emit(buf, seg, n);
        return -1;
      }
      const crlf = lf > p && buf[lf - 1] === CR;
      this.#lineLen += lf - p - (crlf ? 1 : 0);
      if (this.#lineLen > limit) this.#tooLong = true;
      if (!crlf) seg = this.#bareEnding(buf, seg, lf);
      this.#prevCrlf = crlf;
      this.#atLineStart = true;
      this.#lineLen = 0;
      p = lf + 1;
    }
    this.#emit(buf, seg, n);
    return -1;
  }

  /** Emit `buf[seg, at)` and carry `buf[at..]` (at most 2 bytes) to the next chunk. */
  #hold(buf: Uint8Array, seg: number, at: number): number {
    this.#emit(buf, seg, at);
    this.#held = buf.slice(at);
    return -1;
  }
}

function concat(parts: Uint8Array[], total = -1): Uint8Array {
  if (total < 0) {
    total = 0;
    for (const p of parts) total += p.length;
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
