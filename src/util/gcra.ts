/**
 * Throttle: a process-local Generic Cell Rate Algorithm limiter.
 *
 * Sits on the egress side of the mail's path (connection and message rates
 * per path, message promotion rate per scheduled queue). `tryAcquire` is a
 * hot path: no await, no allocation on success. It never sleeps; callers
 * schedule their own retry from `retryAfterMs`.
 *
 * @module
 */

import type { ThrottleSpec } from "./throttle_spec.ts";

/** Result of {@linkcode Throttle.tryAcquire}. */
export type AcquireResult = { ok: true } | { ok: false; retryAfterMs: number };

const OK: AcquireResult = Object.freeze({ ok: true }) as AcquireResult;

/**
 * GCRA throttle: one event costs `interval = period / limit`; up to
 * `maxBurst` events may be taken back to back from an idle state.
 *
 * @example
 * ```ts
 * const t = new Throttle({ limit: 10, periodMs: 1000, maxBurst: 10 });
 * t.tryAcquire(0); // { ok: true }
 * ```
 */
export class Throttle {
  /** Milliseconds one event costs. */
  readonly intervalMs: number;
  /** How far ahead of `now` the theoretical arrival time may run. */
  readonly toleranceMs: number;
  #tat = -Infinity;

  constructor(spec: Pick<ThrottleSpec, "limit" | "periodMs" | "maxBurst">) {
    this.intervalMs = spec.periodMs / spec.limit;
    this.toleranceMs = this.intervalMs * Math.max(1, spec.maxBurst);
  }

  /**
   * Take one event if the rate allows it. Hot path: no allocation when allowed.
   *
   * @param now current time in ms (injectable for tests)
   */
  tryAcquire(now: number = Date.now()): AcquireResult {
    const tat = this.#tat > now ? this.#tat : now;
    const newTat = tat + this.intervalMs;
    const allowAt = newTat - this.toleranceMs;
    if (now < allowAt) return { ok: false, retryAfterMs: allowAt - now };
    this.#tat = newTat;
    return OK;
  }

  /** Theoretical arrival time in ms (`-Infinity` when idle), for reports such as `throttle:throttle()`. */
  get tatMs(): number {
    return this.#tat;
  }

  /** Forget all history (e.g. after a config change). */
  reset(): void {
    this.#tat = -Infinity;
  }
}
