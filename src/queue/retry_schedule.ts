/**
 * Retry schedule and expiry arithmetic (queues-and-delivery §3, §8).
 *
 * Place on the path: the scheduled queue asks here, after a transient
 * failure, when the next attempt is due or whether the message expires; at
 * spool-in it asks how many attempts a message of a given age has probably
 * had. Pure functions of the queue config and the clock: no I/O, no timers.
 *
 * @module
 */

import { formatDuration } from "../util/duration.ts";

/** The parts of a QueueConfig the schedule depends on (all ms). */
export interface RetryPolicy {
  retryInterval: number;
  maxRetryInterval?: number;
  maxAge: number;
}

/** Outcome of {@link scheduleAfterFailure}. */
export type RetryDecision =
  | { kind: "retry"; due: number; delayMs: number }
  | { kind: "expire"; due: number; delayMs: number };

/**
 * Base delay (no jitter) after the `attempt`-th failure, counted from 0:
 * `min(retry_interval × 2^attempt, max_retry_interval)`, whole seconds.
 *
 * @example
 * ```ts
 * delayForAttempt(2, { retryInterval: 1_200_000, maxAge: 6.048e8 }); // 4_800_000 (80 min)
 * ```
 */
export function delayForAttempt(attempt: number, policy: RetryPolicy): number {
  const base = Math.floor(policy.retryInterval / 1000);
  let secs = base * 2 ** attempt;
  if (policy.maxRetryInterval !== undefined) {
    secs = Math.min(secs, Math.floor(policy.maxRetryInterval / 1000));
  }
  return Math.min(secs, 8.64e12) * 1000;
}

/**
 * Jitter span `J = min(retry_interval / 20, 60 s)` in whole seconds (ms); the
 * jitter added to a retry delay is uniform in `±J/2`.
 */
export function jitterSpan(retryInterval: number): number {
  return Math.min(Math.floor(retryInterval / 20 / 1000), 60) * 1000;
}

/**
 * Decide what follows a transient failure of a message that had made
 * `numAttempts` attempts before this one failed (i.e. before the increment).
 * Expiry is decided now: when `(now − created) + delay > max_age` (or, with a
 * per-message `expires`, when the next due time ≥ expires).
 *
 * @param random uniform [0,1) source for the jitter (0.5 = no jitter)
 * @example
 * ```ts
 * const p = { retryInterval: 1_200_000, maxAge: 604_800_000 };
 * scheduleAfterFailure({ now: 0, createdMs: 0, numAttempts: 0, policy: p, random: () => 0.5 });
 * // { kind: "retry", due: 1_200_000, delayMs: 1_200_000 }
 * ```
 */
export function scheduleAfterFailure(args: {
  now: number;
  createdMs: number;
  numAttempts: number;
  policy: RetryPolicy;
  expiresMs?: number;
  random?: () => number;
}): RetryDecision {
  const { now, createdMs, numAttempts, policy } = args;
  const random = args.random ?? Math.random;
  const j = jitterSpan(policy.retryInterval);
  const jitter = j === 0 ? 0 : Math.round((random() - 0.5) * j / 1000) * 1000;
  const delayMs = Math.max(0, delayForAttempt(numAttempts, policy) + jitter);
  const due = now + delayMs;
  if (args.expiresMs !== undefined) {
    return due >= args.expiresMs
      ? { kind: "expire", due, delayMs }
      : { kind: "retry", due, delayMs };
  }
  if (now - createdMs + delayMs > policy.maxAge) return { kind: "expire", due, delayMs };
  return { kind: "retry", due, delayMs };
}

/**
 * Upstream `infer_num_attempts`: the number of whole retry steps that fit in
 * `ageMs` (used at spool-in, where attempt counts are not persisted).
 */
export function inferNumAttempts(ageMs: number, policy: RetryPolicy): number {
  let elapsed = 0;
  let n = 0;
  for (; n < 65535; n++) {
    const d = delayForAttempt(n, policy);
    if (elapsed + d > ageMs || d === 0) return n;
    elapsed += d;
  }
  return n;
}

/**
 * Upstream `compute_delay_based_on_age`: delay from now to the next due time
 * of a message of `ageMs` with `numAttempts`, or `null` when it is past its
 * max age. Young messages get 0 (due immediately). Note the upstream sum
 * starts at attempt 1.
 */
export function delayBasedOnAge(
  numAttempts: number,
  ageMs: number,
  policy: RetryPolicy,
): number | null {
  if (ageMs >= policy.maxAge) return null;
  let overall = 0;
  for (let i = 1; i < numAttempts; i++) overall += delayForAttempt(i, policy);
  if (overall >= policy.maxAge) return null;
  return Math.max(0, overall - ageMs);
}

/** humantime `format_duration` of whole milliseconds: `1m 30s 250ms`, `7days`. */
export function humanDuration(ms: number): string {
  return formatDuration(Math.max(0, Math.round(ms)));
}

/** chrono's `DateTime<Utc>` Display, as upstream prints times: `2026-01-02 03:04:05.123 UTC`. */
function chronoUtc(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2026-01-02T03:04:05.123Z
  const frac = ms % 1000 === 0 ? "" : iso.slice(19, 23);
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${frac} UTC`;
}

/**
 * The content of the Expiration record that follows an `"expire"` decision,
 * in upstream's words (queue.rs `increment_attempts_and_update_delay`),
 * with its `5.4.7` enhanced code in front.
 *
 * @example
 * ```ts
 * expirationText({ dueMs: 75_000, createdMs: 0, maxAgeMs: 60_000 });
 * // "5.4.7 Next delivery time would be 1m 15s after creation, which exceeds max_age=1m"
 * ```
 */
export function expirationText(
  args: { dueMs: number; createdMs: number; maxAgeMs: number; expiresMs?: number },
): string {
  const { dueMs, createdMs, maxAgeMs, expiresMs } = args;
  return expiresMs !== undefined && Number.isFinite(expiresMs)
    ? `5.4.7 Next delivery time would be at ${chronoUtc(dueMs)} which exceeds ` +
      `the expiry time ${chronoUtc(expiresMs)} configured via set_scheduling`
    : `5.4.7 Next delivery time would be ${humanDuration(dueMs - createdMs)} ` +
      `after creation, which exceeds max_age=${humanDuration(maxAgeMs)}`;
}
