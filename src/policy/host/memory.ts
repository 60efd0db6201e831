/**
 * `kumo.set_memory_hard_limit`, `kumo.set_memory_soft_limit`,
 * `kumo.set_memory_low_thresh` and their `get_` twins: the policy's say
 * over the memory thresholds of `src/metrics/memory_limits.ts` (soft
 * limit = where load shedding starts; defaults 75 % of the detected hard
 * limit, low threshold 80 % of the soft limit).
 *
 * Place on the path: a thin binding; the thresholds live in the metrics
 * stage, which the listeners and `/metrics` read. Getters return nil when
 * no limit is known.
 *
 * @module
 */

import {
  memoryThresholds,
  setMemoryHardLimit,
  setMemoryLowThresh,
  setMemorySoftLimit,
} from "../../metrics/memory_limits.ts";

type Fn = (...args: never[]) => unknown;

/**
 * The memory knobs, keyed by their `kumo.` names.
 *
 * @example
 * ```ts
 * const fns = memoryFunctions();
 * (fns.set_memory_soft_limit as (n: number) => void)(1 << 30);
 * ```
 */
export function memoryFunctions(): Record<string, Fn> {
  return {
    set_memory_hard_limit: ((n: number) => setMemoryHardLimit(n)) as Fn,
    set_memory_soft_limit: ((n: number) => setMemorySoftLimit(n)) as Fn,
    set_memory_low_thresh: ((n: number) => setMemoryLowThresh(n)) as Fn,
    get_memory_hard_limit: () => memoryThresholds().hard ?? undefined,
    get_memory_soft_limit: () => memoryThresholds().soft ?? undefined,
    get_memory_low_thresh: () => memoryThresholds().lowThresh ?? undefined,
  };
}
