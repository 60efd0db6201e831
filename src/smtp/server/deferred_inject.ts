/**
 * The internal queue of `deferred_queue = true` listeners,
 * `deferred_smtp_inject.kumomta.internal` (lua-api.md §4.3, §5.1; upstream
 * `DeferredSmtpInjectionDispatcher`).
 *
 * Place on the mail's path: with `deferred_queue` the DATA phase skips
 * `smtp_server_message_received`, sets meta `queue` to this queue's name,
 * spools, logs `Reception` and answers 250 at once; the queue stage then
 * hands each such message here (QueueManager `internalQueues`). Per
 * message: clear meta `queue`, run `smtp_server_message_deferred_inject(msg,
 * conn_meta)` (conn_meta synthesised from the message meta; changes to it
 * are not kept), then
 * - success → `DeferredInjectionRebind` record (`250 ok`) and insert into the
 *   queue the message's meta and recipient now name;
 * - `kumo.reject` with a 5xx code → `Bounce` record, removed from the spool;
 * - anything else (4xx reject, Lua error, failed insert) → `TransientFailure`
 *   record, meta `queue` set back, retried after 1 min × 2ⁿ (upstream's
 *   hard-coded base), expiring after 7 days (`Expiration`).
 * It never talks to a client and never delivers.
 *
 * @module
 */

import type { Message } from "../../message/message.ts";
import { ConnMeta } from "../../policy/conn_methods.ts";
import { formatRfc3339Nanos, nowEpochMs, type ResponseRecord } from "../../log/record.ts";
import type { RecordType } from "../../log/record.ts";
import { diag } from "../../log/diag.ts";
import { expirationText, scheduleAfterFailure } from "../../queue/retry_schedule.ts";
import type { ReceptionServices } from "./reception_services.ts";
import { messageLogContext, receptionRecord } from "./reception_log.ts";

/** Name of the internal queue of `deferred_queue` listeners. */
export const DEFERRED_QUEUE_NAME = "deferred_smtp_inject.kumomta.internal";

/** The `site` of this queue's records (upstream's ready queue name). */
export const DEFERRED_SITE = "unspecified->deferred_smtp_inject.kumomta.internal@defersmtpinject";

const EVENT = "smtp_server_message_deferred_inject";
const RETRY = { retryInterval: 60_000, maxAge: 7 * 86_400_000 };

function response(code: number, content: string): ResponseRecord {
  return { code, enhanced_code: null, content, command: null };
}

/**
 * The handler the queue stage calls for each message of
 * {@link DEFERRED_QUEUE_NAME}; it owns the message (and its spool records)
 * from then on.
 *
 * @example
 * ```ts
 * queues.internalQueues.set(DEFERRED_QUEUE_NAME, deferredInjectHandler(services));
 * ```
 */
export function deferredInjectHandler(
  services: ReceptionServices,
): (msg: Message) => Promise<void> {
  const run = async (msg: Message): Promise<void> => {
    if (services.shuttingDown) return; // still spooled: processed after the restart
    const spools = services.spools;
    if (msg.data === null && spools !== null) {
      msg.data = await spools.data.load(msg.id);
      msg.dataDirty = false;
      if (msg.data === null) {
        diag.error("kumod::smtp_server", `Cannot load data of message "${msg.id}": missing`);
        await spools.meta.remove(msg.id);
        return;
      }
    }
    msg.setMeta("queue", null);
    let res: ResponseRecord = response(250, "ok");
    const r = await services.engine.call(EVENT, "mc", [msg, new ConnMeta({ ...msg.meta })]);
    if (r.kind === "reject") res = response(r.code, r.message);
    else if (r.kind === "error") res = response(450, r.message);
    if (res.code === 250) {
      try {
        await services.handoff.insert(msg);
      } catch (e) {
        res = response(450, (e as Error).message ?? String(e));
      }
    }
    const type: RecordType = res.code === 250
      ? "DeferredInjectionRebind"
      : res.code >= 500
      ? "Bounce"
      : "TransientFailure";
    log(services, msg, type, res);
    if (type === "DeferredInjectionRebind") return;
    if (type === "Bounce") {
      await remove(services, msg);
      return;
    }
    msg.setMeta("queue", DEFERRED_QUEUE_NAME);
    const now = Date.now();
    const next = scheduleAfterFailure({
      now,
      createdMs: msg.createdMs,
      numAttempts: msg.numAttempts,
      policy: RETRY,
    });
    msg.numAttempts++;
    if (next.kind === "expire") {
      const text = expirationText({
        dueMs: next.due,
        createdMs: msg.createdMs,
        maxAgeMs: RETRY.maxAge,
      });
      log(services, msg, "Expiration", {
        code: 551,
        enhanced_code: { class: 5, subject: 4, detail: 7 },
        content: text.slice("5.4.7 ".length),
        command: null,
      });
      await remove(services, msg);
      return;
    }
    if (spools !== null) {
      // As for any delayed message: keep the current state (deferred_spool: first write).
      await Promise.all([
        msg.metaDirty ? spools.meta.store(msg.id, msg.metaBytes(), { sync: true }) : null,
        msg.dataDirty ? spools.data.store(msg.id, msg.getData(), { sync: true }) : null,
      ]);
      msg.metaDirty = false;
      msg.dataDirty = false;
    }
    const timer = setTimeout(() => {
      run(msg).catch((e) =>
        diag.error("kumod::smtp_server", `Cannot process deferred message "${msg.id}": ${e}`)
      );
    }, next.delayMs);
    Deno.unrefTimer(timer);
  };
  return run;
}

function log(services: ReceptionServices, msg: Message, type: RecordType, res: ResponseRecord) {
  let queue = DEFERRED_QUEUE_NAME;
  try {
    queue = msg.queueName();
  } catch { /* no recipient: keep the internal name */ }
  const rec = receptionRecord(
    { ehlo: "", peerIp: "", sessionId: "", nodeId: services.nodeId },
    msg,
    queue,
  );
  const now = nowEpochMs();
  rec.type = type;
  rec.response = res;
  rec.site = DEFERRED_SITE;
  rec.peer_address = null;
  rec.delivery_protocol = "DeferredSmtpInjection";
  rec.reception_protocol = null;
  rec.num_attempts = msg.numAttempts;
  rec.timestamp = Math.floor(now / 1000);
  rec.event_time = formatRfc3339Nanos(now);
  delete rec.session_id;
  services.logs.submit(rec, messageLogContext(msg));
}

async function remove(services: ReceptionServices, msg: Message): Promise<void> {
  const spools = services.spools;
  if (spools === null) return;
  await Promise.allSettled([spools.meta.remove(msg.id), spools.data.remove(msg.id)]);
}
