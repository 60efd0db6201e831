/**
 * Binds the policy's late-bound runtime (src/policy/runtime.ts) to the
 * running queue stage: `kumo.inject_message` spools the message durably
 * (meta + data, fsync; skipped for `deferred_spool`) and inserts it into its
 * queue, as the HTTP inject API does; `kumo.api.admin.*` go to the
 * QueueManager's QueueAdmin, parsing the Lua tables as the HTTP bodies.
 *
 * Place on the path: queue. Called by src/server.ts once the spools are open
 * and the QueueManager exists; the returned function unbinds at shutdown.
 *
 * @module
 */

import type { PolicyRuntime } from "../policy/runtime.ts";
import type { SpoolPair } from "../spool/spool.ts";
import type { Message } from "../message/message.ts";
import type { QueueManager } from "./queue_manager.ts";
import { parseBounceRequest } from "./admin_bounce.ts";
import { parseReadyQueueSuspendRequest, parseSuspendRequest } from "./suspension.ts";
import { storeMessage } from "../spool/store_message.ts";

/** Spool (unless deferred) and queue one message; a refused insert leaves the spool clean. */
export async function spoolAndInsert(
  spools: SpoolPair,
  queues: Pick<QueueManager, "insert">,
  msg: Message,
  deferredSpool: boolean,
): Promise<void> {
  if (!deferredSpool) await storeMessage(spools, msg);
  try {
    await queues.insert(msg);
  } catch (e) {
    await Promise.allSettled([spools.meta.remove(msg.id), spools.data.remove(msg.id)]);
    throw e;
  }
}

/**
 * Fill `runtime` from the running queue stage; returns the unbind function.
 *
 * @example
 * ```ts
 * const unbind = bindPolicyRuntime(runtime, spools, queues);
 * ```
 */
export function bindPolicyRuntime(
  runtime: PolicyRuntime,
  spools: SpoolPair,
  queues: QueueManager,
): () => void {
  const admin = queues.admin;
  runtime.inject = (msg, deferred) => spoolAndInsert(spools, queues, msg, deferred);
  runtime.spools = spools; // msg:save() / msg:shrink*() and reloading shrunk data
  runtime.admin = {
    bounce: (body) => admin.bounce(parseBounceRequest(body)),
    listBounces: () => admin.listBounces(),
    cancelBounce: (id) => admin.cancelBounce(id),
    suspend: (body) => admin.suspend(parseSuspendRequest(body)),
    listSuspensions: () => admin.listSuspensions(),
    cancelSuspension: (id) => admin.cancelSuspension(id),
    suspendReadyQueue: (body) => admin.suspendReadyQueue(parseReadyQueueSuspendRequest(body)),
    listReadySuspensions: () => admin.listReadySuspensions(),
    cancelReadySuspension: (id) => admin.cancelReadySuspension(id),
  };
  return () => {
    runtime.inject = undefined;
    runtime.admin = undefined;
    runtime.spools = undefined;
  };
}
