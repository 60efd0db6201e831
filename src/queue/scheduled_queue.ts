/**
 * A scheduled queue: messages of one queue name waiting for their due time,
 * kept in a binary min-heap with a single timer armed for the earliest.
 *
 * Place on the path: between insert/retry and promotion to a ready queue.
 * It only orders and wakes; the queue manager decides what a due message
 * means. Never touches the spool or the network.
 *
 * @module
 */

import { shrinkForDelay } from "./shrink_policy.ts";
import type { Message } from "../message/message.ts";
import type { QueueConfig } from "../policy/config/queue_config.ts";
import type { QueueNameComponents } from "../message/queue_name.ts";
import type { WeightedRoundRobin } from "../egress/egress_pool.ts";
import type { Throttle } from "../util/gcra.ts";
import { scheduledDue } from "../message/schedule_window.ts";

/** The longest delay setTimeout takes (2^31 − 1 ms). */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Timer-ordered holding area for one scheduled queue.
 *
 * @example
 * ```ts
 * const q = new ScheduledQueue("example.test", comps, config, (m) => promote(m));
 * q.schedule(msg); // fires onDue(msg) at msg.due
 * ```
 */
export class ScheduledQueue {
  readonly name: string;
  readonly components: QueueNameComponents;
  config: QueueConfig;
  configExpires = 0;
  /** Per-queue source selection state (upstream keeps WRR per scheduled queue). */
  wrr: WeightedRoundRobin | null = null;
  rrPool: string | undefined;
  /** `max_message_rate` of the queue config. */
  throttle: Throttle | null = null;
  /** [admin] When a message was last added or taken out (inspect-sched-q). */
  lastChanged = Date.now();
  #heap: Message[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #onDue: (msg: Message) => void;
  #stopped = false;

  constructor(
    name: string,
    components: QueueNameComponents,
    config: QueueConfig,
    onDue: (msg: Message) => void,
  ) {
    this.name = name;
    this.components = components;
    this.config = config;
    this.#onDue = onDue;
  }

  /** Messages waiting. */
  get size(): number {
    return this.#heap.length;
  }

  /**
   * Add a message; it fires at `msg.due`, moved forward to what its own
   * schedule (`msg:set_scheduling`: first_attempt, weekly window) allows.
   * A message due in the future releases its data as the queue's
   * `shrink_policy` says (shrink_policy.ts); promotion loads it back.
   */
  schedule(msg: Message): void {
    if (this.#stopped) return;
    if (msg.scheduling !== undefined) msg.due = scheduledDue(msg.due, msg.scheduling);
    const h = this.#heap;
    const now = this.lastChanged = Date.now();
    // shrink_policy: a message that waits lets go of its (spooled) data.
    if (msg.due > now) shrinkForDelay(msg, this.config.shrinkPolicy, msg.due - now);
    h.push(msg);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p].due <= h[i].due) break;
      [h[p], h[i]] = [h[i], h[p]];
      i = p;
    }
    this.#arm();
  }

  #pop(): Message | undefined {
    const h = this.#heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < h.length && h[l].due < h[m].due) m = l;
        if (r < h.length && h[r].due < h[m].due) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i], h[m]];
        i = m;
      }
    }
    return top;
  }

  #arm(): void {
    if (this.#stopped || this.#heap.length === 0) return;
    const at = this.#heap[0].due;
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    // setTimeout wants a 32-bit delay: a due time beyond ~24.8 days just
    // wakes up early and re-arms (#fire only takes messages that are due).
    this.#timer = setTimeout(
      () => this.#fire(),
      Math.min(MAX_TIMER_MS, Math.max(0, at - Date.now())),
    );
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = Date.now();
    while (!this.#stopped && this.#heap.length > 0 && this.#heap[0].due <= now) {
      this.#onDue(this.#pop()!);
    }
    this.#arm();
  }

  /** [admin] Up to `limit` waiting messages, in no particular order (inspection). */
  messages(limit = Infinity): Message[] {
    return this.#heap.slice(0, Math.min(limit, this.#heap.length));
  }

  /** [admin] Take out every waiting message for which `pred` holds (bounce, rebind). */
  removeWhere(pred: (msg: Message) => boolean): Message[] {
    const out: Message[] = [];
    const keep: Message[] = [];
    for (const m of this.#heap) (pred(m) ? out : keep).push(m);
    if (out.length === 0) return out;
    this.#heap = keep.sort((a, b) => a.due - b.due); // a sorted array is a valid heap
    this.lastChanged = Date.now();
    return out;
  }

  /** Stop the timer; returns the messages still waiting. */
  stop(): Message[] {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const left = this.#heap;
    this.#heap = [];
    return left;
  }
}
