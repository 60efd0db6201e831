/**
 * Dot-stuffing for the SMTP client: make a message body safe to send after
 * `DATA` (RFC 5321 §4.5.2) and append the end-of-data terminator.
 *
 * Place on the mail's path: `smtp/client/` calls it once per message, just
 * before writing the body. It never changes anything but leading dots and the
 * terminator (line endings are fixed at reception, not here).
 *
 * Rules (queues-and-delivery.md §5.2): a `.` at the start of any line,
 * including the first, is doubled; `\r\n.\r\n` is appended, or `.\r\n` when
 * the body already ends in LF (or is empty).
 *
 * @module
 */

const LF = 0x0a;
const DOT = 0x2e;
const TERM_AFTER_LF = new Uint8Array([DOT, 0x0d, LF]); // ".\r\n"
const TERM_FULL = new Uint8Array([0x0d, LF, DOT, 0x0d, LF]); // "\r\n.\r\n"

/** The terminator to write after `body`: `.\r\n` when it ends in LF (or is empty), else `\r\n.\r\n`. */
function terminatorFor(body: Uint8Array): Uint8Array {
  return body.length === 0 || body[body.length - 1] === LF ? TERM_AFTER_LF : TERM_FULL;
}

/** Count lines starting with `.` (a dot at index 0 or right after an LF). */
function countLeadingDots(body: Uint8Array): number {
  let count = 0;
  let i = body.indexOf(DOT);
  while (i >= 0) {
    if (i === 0 || body[i - 1] === LF) count++;
    i = body.indexOf(DOT, i + 1);
  }
  return count;
}

/**
 * Dot-stuff `body` and append the terminator, as one buffer (one write, so
 * no tiny trailing segment meets Nagle/delayed-ACK — notes/platform.md).
 * Allocates exactly once.
 *
 * @example
 * ```ts
 * const enc = new TextEncoder();
 * new TextDecoder().decode(dotStuff(enc.encode(".a\r\nb\r\n"))); // "..a\r\nb\r\n.\r\n"
 * ```
 */
export function dotStuff(body: Uint8Array): Uint8Array {
  const term = terminatorFor(body);
  const dots = countLeadingDots(body);
  const out = new Uint8Array(body.length + dots + term.length);
  if (dots === 0) {
    out.set(body, 0);
  } else {
    copyStuffed(body, out);
  }
  out.set(term, body.length + dots);
  return out;
}

/**
 * Like {@link dotStuff} but without copying when no line starts with `.`:
 * returns `[body, terminator]` to be written together (e.g. `socket.cork()`
 * + two writes + `uncork()`, or a writev); otherwise one stuffed buffer that
 * already ends with the terminator.
 *
 * @example
 * ```ts
 * const parts = dotStuffParts(new TextEncoder().encode("hi\r\n")); // [body, ".\r\n"]
 * ```
 */
export function dotStuffParts(body: Uint8Array): Uint8Array[] {
  if (countLeadingDots(body) === 0) return [body, terminatorFor(body)];
  return [dotStuff(body)];
}

function copyStuffed(body: Uint8Array, out: Uint8Array): void {
  let o = 0;
  let seg = 0;
  let i = body.indexOf(DOT);
  while (i >= 0) {
    if (i === 0 || body[i - 1] === LF) {
      // Copy up to and including this dot, then write the dot again.
      out.set(body.subarray(seg, i + 1), o);
      o += i + 1 - seg;
      out[o++] = DOT;
      seg = i + 1;
    }
    i = body.indexOf(DOT, i + 1);
  }
  out.set(body.subarray(seg), o);
}
