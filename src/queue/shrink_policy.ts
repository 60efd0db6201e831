/**
 * `shrink_policy` (lua-api.md §6.3, upstream `make_queue_config.shrink_policy`):
 * how much of a message to release from memory while it waits in a
 * scheduled queue for a due time in the future.
 *
 * Place on the path: queue. Upstream's rule: each entry in order is
 * compared with the time until the message is due; when that time is at
 * least the entry's `interval`, the entry's policy is selected, and the last
 * selected one applies. An empty (default) policy is `ShrinkDataAndMeta`
 * for any future due time; with entries and none matching, nothing is
 * released. kumo-edge keeps meta in memory (the server reads it
 * synchronously), so `ShrinkDataAndMeta` releases the data, as
 * `ShrinkData` does. Released data is loaded back from the data spool when
 * the message is promoted to a ready queue (and by `msg:*` methods that
 * need it). Only data that is in the spool is released: a message whose
 * data was changed and not yet saved keeps it.
 *
 * @module
 */

import type { Message } from "../message/message.ts";
import type { MemoryReductionPolicy, QueueShrinkPolicy } from "../policy/config/queue_config.ts";

/**
 * The policy for a message due in `dueInMs`.
 *
 * @example
 * ```ts
 * selectShrinkPolicy([], 60_000); // "ShrinkDataAndMeta"
 * selectShrinkPolicy([{ interval: 300_000, policy: "ShrinkData" }], 60_000); // "NoShrink"
 * ```
 */
export function selectShrinkPolicy(
  steps: readonly QueueShrinkPolicy[],
  dueInMs: number,
): MemoryReductionPolicy {
  if (dueInMs <= 0) return "NoShrink";
  if (steps.length === 0) return "ShrinkDataAndMeta";
  let policy: MemoryReductionPolicy = "NoShrink";
  for (const s of steps) if (dueInMs >= s.interval) policy = s.policy;
  return policy;
}

/** Release what the policy says of `msg`, due in `dueInMs`; true when its data was released. */
export function shrinkForDelay(
  msg: Message,
  steps: readonly QueueShrinkPolicy[],
  dueInMs: number,
): boolean {
  if (msg.data === null || msg.dataDirty) return false;
  if (selectShrinkPolicy(steps, dueInMs) === "NoShrink") return false;
  msg.dropData();
  return true;
}
