/**
 * QueueHandoff: the one narrow door from reception (SMTP server, spool-in,
 * HTTP inject) into the queue stage.
 *
 * Place on the mail's path: the receiver calls `insert(msg)` after the
 * message is durably in the spool (or deliberately not spooled, e.g.
 * `deferred_spool`); the queue resolves the scheduled queue and schedules
 * delivery. A rejected promise means "not queued" (the SMTP server then
 * answers `250 PARTIAL` / `451 4.4.5`). It must never write to the socket.
 *
 * @module
 */

import type { Message } from "../message/message.ts";

/**
 * Hands an accepted message to the queue stage.
 *
 * @example
 * ```ts
 * const handoff: QueueHandoff = { insert: (msg) => queues.insert(msg) };
 * await handoff.insert(msg);
 * ```
 */
export interface QueueHandoff {
  /** Take ownership of `msg`; rejects when it could not be queued. */
  insert(msg: Message): Promise<void>;
  /**
   * [smtp] Resolve queue `name` before a message for it is spooled; rejects
   * when its config (or pool/sources) cannot be resolved. Optional: a
   * hand-off without queues has nothing to resolve.
   */
  prepare?(name: string): Promise<void>;
}
