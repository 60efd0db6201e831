/**
 * Coarse deadlines: timeouts that are set and cleared for every connection
 * or message and almost never fire (a DATA phase's processing limit, the
 * linger after our last reply), checked by one shared interval instead of a
 * `setTimeout` each.
 *
 * Place on the path: util. A Deno timer costs ~3 µs to set and clear here;
 * at thousands of messages a second, two of them per message were ~2% of
 * the receive path. A deadline here is a Set insert and delete; it fires
 * within {@linkcode TICK_MS} after it is due. The interval runs only while
 * deadlines are pending and never keeps the process alive by itself.
 *
 * @module
 */

/** How often pending deadlines are checked (ms): the most a deadline fires late. */
export const TICK_MS = 50;

/** A pending deadline; pass it to {@linkcode cancelDeadline}. */
export interface Deadline {
  readonly at: number;
  readonly fire: () => void;
}

const pending = new Set<Deadline>();
let interval: ReturnType<typeof setInterval> | undefined;

function tick(): void {
  const now = Date.now();
  for (const d of pending) {
    if (d.at > now) continue;
    pending.delete(d);
    try {
      d.fire();
    } catch (e) {
      queueMicrotask(() => {
        throw e; // as an uncaught timer callback error would
      });
    }
  }
  if (pending.size === 0 && interval !== undefined) {
    clearInterval(interval);
    interval = undefined;
  }
}

/**
 * Call `fire` once, `ms` from now (within {@linkcode TICK_MS}), unless
 * cancelled first.
 *
 * @example
 * ```ts
 * const d = deadline(60_000, () => console.log("too slow"));
 * cancelDeadline(d); // done in time
 * ```
 */
export function deadline(ms: number, fire: () => void): Deadline {
  const d = { at: Date.now() + ms, fire };
  pending.add(d);
  if (interval === undefined) {
    const i = setInterval(tick, TICK_MS);
    Deno.unrefTimer(i);
    interval = i;
  }
  return d;
}

/** Forget a deadline (no-op when it fired or was cancelled already). */
export function cancelDeadline(d: Deadline | undefined): void {
  if (d === undefined || !pending.delete(d)) return;
  if (pending.size === 0 && interval !== undefined) {
    clearInterval(interval); // nothing left to watch: no timer outlives its deadlines
    interval = undefined;
  }
}
