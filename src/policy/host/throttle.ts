/**
 * `kumo.make_throttle(name, spec)`: a named process-local GCRA throttle for
 * policy (lua-api.md §8), e.g. `policy-extras.queue`'s
 * `overall_max_message_rate`, which delays messages at
 * `throttle_insert_ready_queue`.
 *
 * Place on the path: policy → util (GCRA). Throttles are shared by name
 * across all Lua contexts (process-wide state lives in JS); a changed spec
 * for the same name starts a fresh throttle. Redis-shared throttles are not
 * supported: every throttle is local.
 *
 * @module
 */

import { Throttle } from "../../util/gcra.ts";
import { parseThrottleSpec, type ThrottleSpec } from "../../util/throttle_spec.ts";
import type { Message } from "../../message/message.ts";
import { registerLuaClass } from "./host_object.ts";

/** What `throttle:throttle()` returns (seconds as floats). */
export interface ThrottleResult {
  throttled: boolean;
  limit: number;
  remaining: number;
  reset_after: number;
  retry_after?: number;
}

/** A named throttle as Lua sees it. */
export class PolicyThrottle {
  constructor(readonly name: string, readonly spec: ThrottleSpec, readonly gcra: Throttle) {}

  /** Take one event; report GCRA state (redis-cell style). */
  take(now = Date.now()): ThrottleResult {
    const g = this.gcra;
    const limit = Math.max(1, this.spec.maxBurst);
    const r = g.tryAcquire(now);
    const tat = Math.max(g.tatMs, now);
    const remaining = Math.max(0, Math.floor((now - (tat - g.toleranceMs)) / g.intervalMs));
    const resetAfter = Math.max(0, tat - now) / 1000;
    if (r.ok) return { throttled: false, limit, remaining, reset_after: resetAfter };
    return {
      throttled: true,
      limit,
      remaining: 0,
      reset_after: resetAfter,
      retry_after: r.retryAfterMs / 1000,
    };
  }
}

const throttles = new Map<string, PolicyThrottle>();

/** Find or make the throttle `name` with `spec` (shared across contexts). */
export function makeThrottle(name: unknown, spec: unknown): PolicyThrottle {
  if (typeof name !== "string") throw new TypeError("kumo.make_throttle: name must be a string");
  const parsed = parseThrottleSpec(spec);
  const prior = throttles.get(name);
  if (prior && prior.spec.text === parsed.text) return prior;
  if (throttles.size >= 100_000) throttles.clear();
  const t = new PolicyThrottle(name, parsed, new Throttle(parsed));
  throttles.set(name, t);
  return t;
}

registerLuaClass(PolicyThrottle, {
  name: "Throttle",
  fields: (t, k) => k === "name" ? t.name : k === "spec" ? t.spec.text : undefined,
  methods: {
    throttle: (t) => t.take(),
    delay_message_if_throttled: (t, msg: Message) => {
      const r = t.take();
      if (!r.throttled) return false;
      msg.due = Date.now() + (r.retry_after ?? 0) * 1000;
      return true;
    },
    explain: (t) =>
      `throttle "${t.name}": ${t.spec.text} (GCRA, one event every ${
        t.gcra.intervalMs / 1000
      }s, bursts of up to ${t.spec.maxBurst}, process-local)`,
  },
  asyncMethods: {
    sleep_if_throttled: async (t) => {
      let slept = false;
      for (let i = 0; i < 1_000_000; i++) {
        const r = t.take();
        if (!r.throttled) return slept;
        slept = true;
        await new Promise((res) => setTimeout(res, Math.ceil((r.retry_after ?? 0) * 1000)));
      }
      return slept;
    },
  },
  meta: { __tostring: (t) => `Throttle(${t.name}: ${t.spec.text})` },
});

/** `kumo.make_throttle`. */
export const THROTTLE_FUNCTIONS: Record<string, (...args: never[]) => unknown> = {
  make_throttle: makeThrottle as (...args: never[]) => unknown,
};
