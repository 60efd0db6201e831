/**
 * Memory limits and headroom (KumoMTA's memory management, cli.md §2 step
 * 3): a hard limit detected at start-up (cgroup v2, then cgroup v1, then
 * `ulimit -v`, then physical RAM), a soft limit of 75 % of it and a low
 * threshold of 80 % of the soft limit, each overridable from the policy
 * (`kumo.set_memory_hard_limit`, `_soft_limit`, `_low_thresh`). The
 * headroom is `soft limit - usage`, clamped at 0; at 0 the server sheds
 * load: liveness says `load shedding`, inject answers 503 and new SMTP
 * sessions get `421 4.3.2 … load shedding. Try later`.
 *
 * Usage is this process's resident set size. Upstream prefers the cgroup's
 * own usage figure when it runs in one; kumo-edge does not, because that
 * figure counts every process of the cgroup (a test runner, a sidecar) and
 * would shed load for memory kumo does not hold.
 *
 * Place on the path: beside it. The HTTP and SMTP listeners ask
 * {@link isLoadShedding} before taking new mail; `/metrics` reports
 * `memory_limit`, `memory_low_thresh` and `memory_usage`. RSS is sampled at
 * most every 100 ms, so a burst of requests costs one read. It never frees
 * memory itself.
 *
 * @module
 */

/** The three thresholds in bytes; `null` when unknown. */
export interface MemoryThresholds {
  hard: number | null;
  soft: number | null;
  lowThresh: number | null;
}

const SOFT_FRACTION = 0.75;
const LOW_FRACTION = 0.8;
const SAMPLE_MS = 100;

/** cgroup "no limit" values are near 2^63; anything above 2^60 counts as unlimited. */
const UNLIMITED = 2 ** 60;

function readNumber(path: string): number | null {
  try {
    const text = Deno.readTextFileSync(path).trim();
    if (!/^\d+$/.test(text)) return null;
    const n = Number(text);
    return n > 0 && n < UNLIMITED ? n : null;
  } catch {
    return null;
  }
}

/** The cgroup v2 directory of this process (`0::/path` in /proc/self/cgroup). */
function cgroupV2Dir(): string | null {
  try {
    const line = Deno.readTextFileSync("/proc/self/cgroup").split("\n").find((l) =>
      l.startsWith("0::")
    );
    return line === undefined
      ? null
      : `/sys/fs/cgroup${line.slice(3) === "/" ? "" : line.slice(3)}`;
  } catch {
    return null;
  }
}

/** `Max address space` of /proc/self/limits (bytes), when set. */
function ulimitBytes(): number | null {
  try {
    const line = Deno.readTextFileSync("/proc/self/limits").split("\n").find((l) =>
      l.startsWith("Max address space")
    );
    const m = line === undefined ? null : /^Max address space\s+(\d+)/.exec(line);
    const n = m ? Number(m[1]) : NaN;
    return Number.isFinite(n) && n > 0 && n < UNLIMITED ? n : null;
  } catch {
    return null;
  }
}

/**
 * The memory constraint the process runs under, in the order upstream
 * checks: cgroup v2 `memory.max`, cgroup v1 `memory.limit_in_bytes`,
 * `ulimit -v`, physical RAM; null when none can be read.
 *
 * @example
 * ```ts
 * detectHardLimit(); // 25769803776 on a 24 GiB machine without cgroup limit
 * ```
 */
export function detectHardLimit(): number | null {
  const v2 = cgroupV2Dir();
  const fromV2 = v2 === null ? null : readNumber(`${v2}/memory.max`);
  if (fromV2 !== null) return fromV2;
  const fromV1 = readNumber("/sys/fs/cgroup/memory/memory.limit_in_bytes");
  if (fromV1 !== null) return fromV1;
  const fromUlimit = ulimitBytes();
  if (fromUlimit !== null) return fromUlimit;
  try {
    const total = Deno.systemMemoryInfo().total;
    return total > 0 ? total : null;
  } catch {
    return null;
  }
}

let detected: number | null | undefined;
const explicit: { hard?: number; soft?: number; low?: number } = {};
let sampledAt = -Infinity;
let sampledRss = 0;

function hardLimit(): number | null {
  if (explicit.hard !== undefined) return explicit.hard;
  if (detected === undefined) detected = detectHardLimit();
  return detected;
}

/**
 * The thresholds now in force (policy settings first, then the defaults
 * derived from the detected hard limit).
 *
 * @example
 * ```ts
 * setMemoryHardLimit(100_000);
 * setMemorySoftLimit(80_000);
 * memoryThresholds(); // { hard: 100000, soft: 80000, lowThresh: 64000 }
 * ```
 */
export function memoryThresholds(): MemoryThresholds {
  const hard = hardLimit();
  const soft = explicit.soft ?? (hard === null ? null : Math.floor(hard * SOFT_FRACTION));
  const lowThresh = explicit.low ?? (soft === null ? null : Math.floor(soft * LOW_FRACTION));
  return { hard, soft, lowThresh };
}

function checkBytes(what: string, n: unknown): number {
  const v = Number(n);
  if (!Number.isFinite(v) || v < 0) {
    throw new RangeError(`Cannot set memory ${what} ${JSON.stringify(n)}: not a byte count`);
  }
  return Math.floor(v);
}

/** `kumo.set_memory_hard_limit(bytes)`. */
export function setMemoryHardLimit(bytes: unknown): void {
  explicit.hard = checkBytes("hard limit", bytes);
  sampledAt = -Infinity;
}

/** `kumo.set_memory_soft_limit(bytes)`: the point where load shedding starts. */
export function setMemorySoftLimit(bytes: unknown): void {
  explicit.soft = checkBytes("soft limit", bytes);
  sampledAt = -Infinity;
}

/** `kumo.set_memory_low_thresh(bytes)`. */
export function setMemoryLowThresh(bytes: unknown): void {
  explicit.low = checkBytes("low threshold", bytes);
}

/** Forget policy settings (tests). */
export function resetMemoryLimits(): void {
  delete explicit.hard;
  delete explicit.soft;
  delete explicit.low;
  sampledAt = -Infinity;
}

/** Resident set size in bytes, sampled at most every 100 ms. */
export function memoryUsage(): number {
  const now = performance.now();
  if (now - sampledAt >= SAMPLE_MS) {
    sampledAt = now;
    try {
      sampledRss = Deno.memoryUsage().rss;
    } catch { /* keep the last sample */ }
  }
  return sampledRss;
}

/**
 * Bytes left before the soft limit (0 when at or over it; Infinity when no
 * limit is known).
 */
export function memoryHeadroom(): number {
  const { soft } = memoryThresholds();
  if (soft === null) return Infinity;
  return Math.max(0, soft - memoryUsage());
}

/**
 * True while the headroom is 0: new mail is refused until usage drops
 * below the soft limit again.
 *
 * @example
 * ```ts
 * if (isLoadShedding()) return new Response("Error: load shedding", { status: 503 });
 * ```
 */
export function isLoadShedding(): boolean {
  return memoryHeadroom() === 0;
}
