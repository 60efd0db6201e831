/**
 * Admin rebind (http-api §6.7): the request reader and the per-message
 * step — set meta from `data` or call the Lua `rebind_message(msg, data)`
 * event — that may move a message to another scheduled queue.
 *
 * Place on the path: applied by the queue stage to messages taken out of
 * matching scheduled queues (never to messages already in ready queues).
 * It changes the message only; the queue stage saves, logs and re-queues.
 *
 * @module
 */

import type { Message } from "../message/message.ts";
import type { PolicyEngine } from "../policy/engine.ts";
import type { ResponseRecord } from "../log/record.ts";
import {
  AdminRequestError,
  asObject,
  optBool,
  type QueueCriteria,
  readCriteria,
  reqString,
} from "./queue_criteria.ts";

/** A parsed `RebindV1Request`. */
export interface RebindRequest {
  reason: string;
  data: Record<string, string>;
  criteria: QueueCriteria;
  suppressLogging: boolean;
  triggerRebindEvent: boolean;
  alwaysFlush: boolean;
}

/**
 * Read a `RebindV1Request` (unknown keys ignored; `queue_names` not part of it).
 *
 * @throws {AdminRequestError} when a field is missing or has the wrong type
 */
export function parseRebindRequest(body: unknown): RebindRequest {
  const b = asObject(body);
  const reason = reqString(b, "reason");
  const data = b.data;
  if (data === undefined) throw new AdminRequestError("missing field `data`");
  if (
    typeof data !== "object" || data === null || Array.isArray(data) ||
    !Object.values(data).every((v) => typeof v === "string")
  ) {
    throw new AdminRequestError("data: invalid type: expected a map of strings to strings");
  }
  const criteria = readCriteria({ ...b, queue_names: undefined }, true);
  return {
    reason,
    data: data as Record<string, string>,
    criteria,
    suppressLogging: optBool(b, "suppress_logging"),
    triggerRebindEvent: optBool(b, "trigger_rebind_event"),
    alwaysFlush: optBool(b, "always_flush"),
  };
}

/**
 * Apply the rebind to one message: the `rebind_message` event when asked
 * for, else each `data` entry as meta. Returns whether the message changed.
 *
 * @throws {Error} when the `rebind_message` handler fails
 */
export async function applyRebind(
  msg: Message,
  req: RebindRequest,
  engine: PolicyEngine,
): Promise<boolean> {
  if (req.triggerRebindEvent) {
    const before = msg.metaDirty;
    msg.metaDirty = false;
    if (engine.hasHandler("rebind_message")) {
      await engine.callOrThrow("rebind_message", "mt", [msg, { ...req.data }]);
    }
    const changed = msg.metaDirty;
    msg.metaDirty = before || changed;
    return changed;
  }
  let changed = false;
  for (const [k, v] of Object.entries(req.data)) {
    if (msg.meta[k] !== v) {
      msg.setMeta(k, v);
      changed = true;
    }
  }
  return changed;
}

/** The AdminRebind record's response (`250 Rebound from <old> to <new>: <reason>`). */
export function rebindResponse(from: string, to: string, reason: string): ResponseRecord {
  return {
    code: 250,
    enhanced_code: null,
    content: `Rebound from ${from} to ${to}: ${reason}`,
    command: null,
  };
}
