/**
 * Write one message durably to a spool pair: meta and data records, both
 * synced (the group commit shares the sync with every store in flight),
 * then mark the message clean. Every acceptance path (SMTP DATA, HTTP
 * inject, policy-made messages, log-hook messages) uses it before it
 * acknowledges anything.
 *
 * Place on the path: spool. Rejects when either store fails; the caller
 * decides what to remove.
 *
 * @module
 */

import type { Message } from "../message/message.ts";
import type { SpoolPair } from "./spool.ts";

/**
 * Store `msg` in `spools` with sync and clear its dirty flags.
 *
 * @example
 * ```ts
 * await storeMessage(spools, msg); // now safe to answer 250
 * ```
 */
export async function storeMessage(spools: SpoolPair, msg: Message): Promise<void> {
  await Promise.all([
    spools.meta.store(msg.id, msg.metaBytes(), { sync: true }),
    spools.data.store(msg.id, msg.getData(), { sync: true }),
  ]);
  msg.metaDirty = false;
  msg.dataDirty = false;
}
