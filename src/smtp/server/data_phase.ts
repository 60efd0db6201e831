/**
 * The end of DATA (queues-and-delivery.md §9.4 steps 2–6): turn one
 * accepted transaction into spooled, logged messages handed to the queue,
 * and compute the final reply.
 *
 * Place on the mail's path: called by the session once the LineReader
 * delivered an acceptable body. Order per transaction:
 * `smtp_server_data` → split (`smtp_server_split_transaction`, else
 * `batch_handling`) → per batch new id, `Received:`, then
 * `smtp_server_message_received` (with `deferred_queue`: meta `queue` =
 * `deferred_smtp_inject.kumomta.internal` instead) → per batch `X-KumoRef`,
 * relay check → queue resolution (`get_queue_config`, pool, sources) →
 * spool write (meta + data, both with sync) → `Reception` log → queue
 * hand-off → `250 OK ids=…`. A reject or error in any event, or a queue
 * that cannot be resolved, refuses the whole transaction before anything is
 * spooled (the session maps PolicyReject / PolicyError to replies); a
 * timeout or a failed write after spooling removes the records again, and
 * records the policy wrote itself (`msg:save()`) go too unless the message
 * is queued. It never writes to the socket.
 *
 * @module
 */

import { cancelDeadline, deadline } from "../../util/coarse_timer.ts";
import { Message } from "../../message/message.ts";
import type { EnvelopeAddress } from "../../message/envelope_address.ts";
import type { ConnMeta } from "../../policy/conn_methods.ts";
import type { EsmtpListenerParams } from "../../policy/config/esmtp_listener.ts";
import { PolicyError } from "../../policy/policy_error.ts";
import { loadMessageData, wasSaved } from "../../policy/message_methods.ts";
import { diag } from "../../log/diag.ts";
import type { ReceptionServices } from "./reception_services.ts";
import { decideRelay, type ListenerDomainCache } from "./relay.ts";
import type { SessionLogInfo } from "./reception_log.ts";
import { receivedHeaderValue, supplementalHeaderValue } from "./trace_headers.ts";
import { classifyReport, logReceived, type ReportVerdict } from "./report_handling.ts";
import { countReceived, listenerService } from "../../metrics/kumo_metrics.ts";
import type { SpoolPair } from "../../spool/spool.ts";
import { DEFERRED_QUEUE_NAME } from "./deferred_inject.ts";
import { storeMessage } from "../../spool/store_message.ts";

/** A reply as code + wire text (enhanced code, if any, at the start of `text`). */
export interface PhaseReply {
  code: number;
  text: string;
}

/** Everything the DATA phase needs from the session. */
export interface DataPhaseInput {
  services: ReceptionServices;
  params: EsmtpListenerParams;
  conn: ConnMeta;
  sender: EnvelopeAddress;
  recipients: readonly EnvelopeAddress[];
  /** Unstuffed body with CRLF line endings. */
  body: Uint8Array;
  log: SessionLogInfo;
  peerIp: string;
  localIp: string;
  tlsVersion?: string;
  tlsCipher?: string;
  authenticated: boolean;
  relayCache: ListenerDomainCache;
}

type Stage = "rx" | "resolve" | "spool" | "insert";

/** Progress shared between the DATA phase and its timeout. */
interface PhaseState {
  stage: Stage;
  /** The timeout fired and answered `451 4.4.5 …`: do nothing more that lasts. */
  abandoned: boolean;
  /** Past the point of no return (spooled, about to log and queue): the timeout stands down. */
  committed: boolean;
}

/**
 * Run the DATA phase under `data_processing_timeout`; resolves to the final
 * reply (`250 OK ids=…`, `250 PARTIAL ids=…`, `550 5.7.1 …`, `451 4.4.5 …`).
 *
 * The timeout covers the policy events, queue resolution and the spool
 * write. When it fires the client gets `451 4.4.5 data_processing_timeout
 * exceeded (<stage>)` and the phase leaves no trace: a spool write that
 * completes afterwards is removed again, nothing is logged as received or
 * queued. Once every record is durable the phase commits: the timeout no
 * longer fires, so a message is never both refused and delivered.
 *
 * @throws {PolicyReject} when an event rejected (reply with its code/text)
 * @throws {PolicyError} on any other policy failure, including a queue
 *   whose config/pool cannot be resolved (→ `421 4.3.0`)
 * @example
 * ```ts
 * const reply = await runDataPhase(input); // { code: 250, text: "OK ids=..." }
 * ```
 */
export function runDataPhase(input: DataPhaseInput): Promise<PhaseReply> {
  const state: PhaseState = { stage: "rx", abandoned: false, committed: false };
  return new Promise<PhaseReply>((resolve, reject) => {
    const limit = deadline(input.params.dataProcessingTimeout, () => {
      if (state.committed) return;
      state.abandoned = true;
      resolve({
        code: 451,
        text: `4.4.5 data_processing_timeout exceeded (${state.stage})`,
      });
    });
    process(input, state).then(resolve, reject).finally(() => cancelDeadline(limit));
  });
}

const abandonedReply = (stage: Stage): PhaseReply => ({
  code: 451,
  text: `4.4.5 data_processing_timeout exceeded (${stage})`,
});

/**
 * The phase proper, then the clean-up: every message of the transaction
 * that the policy wrote to the spool (`msg:save()`, `shrink*` in
 * `smtp_server_data` / `smtp_server_message_received`) but that did not end
 * up queued (a reject, an error, a timeout, a refused relay, the `null`
 * queue…) has its records removed, so that it is not queued at the next
 * start. Only queued messages keep theirs.
 */
async function process(input: DataPhaseInput, state: PhaseState): Promise<PhaseReply> {
  const created: Message[] = [];
  const queued = new Set<Message>();
  try {
    return await accept(input, state, created, queued);
  } finally {
    const spools = input.services.spools;
    const orphans = created.filter((m) => !queued.has(m) && wasSaved(m));
    if (spools !== null && orphans.length > 0) await unspool(spools, orphans);
  }
}

async function accept(
  input: DataPhaseInput,
  state: PhaseState,
  created: Message[],
  queued: Set<Message>,
): Promise<PhaseReply> {
  const { services, params, conn } = input;
  const engine = services.engine;
  const now = Date.now();

  // Step 2: one event for the whole transaction.
  const txn = new Message({
    sender: input.sender,
    recipients: input.recipients,
    meta: { ...conn.values },
    data: input.body,
  });
  created.push(txn);
  if (engine.hasHandler("smtp_server_data")) {
    await engine.callOrThrow("smtp_server_data", "mc", [txn, conn]);
  }

  // Step 3: split into batches.
  const batches = await splitTransaction(input, txn);

  // Step 4: per batch id, Received:, smtp_server_message_received (or, with
  // deferred_queue, the internal queue instead of the event).
  const messages: Message[] = [];
  const trace = params.traceHeaders;
  for (const rcpts of batches) {
    if (state.abandoned) return abandonedReply("rx");
    const msg = new Message({
      sender: txn.sender,
      recipients: rcpts,
      meta: { ...txn.meta },
      data: txn.getData(),
    });
    created.push(msg);
    if (trace.receivedHeader && rcpts.length > 0) {
      msg.prependHeader(
        "Received",
        receivedHeaderValue({
          ehlo: input.log.ehlo,
          peerIp: input.peerIp,
          hostname: params.hostname,
          localIp: input.localIp,
          tlsVersion: input.tlsVersion,
          tlsCipher: input.tlsCipher,
          authenticated: input.authenticated,
          id: msg.id,
          recipient: rcpts[0].email,
          epochMs: now,
        }),
      );
    }
    if (params.deferredQueue) {
      msg.setMeta("queue", DEFERRED_QUEUE_NAME);
    } else if (engine.hasHandler("smtp_server_message_received")) {
      await engine.callOrThrow("smtp_server_message_received", "mc", [msg, conn]);
      // msg:shrink_data() dropped the bytes (they are in the data spool).
      if (msg.data === null) {
        await loadMessageData(msg, services.spools).catch((e) => {
          throw new PolicyError(String((e as Error).message));
        });
      }
    }
    messages.push(msg);
  }
  if (state.abandoned) return abandonedReply("rx");

  // Step 5: supplemental header, relay decision, queue name, queue resolution.
  state.stage = "resolve";
  const accepted: { msg: Message; queue: string; report: ReportVerdict | null }[] = [];
  let relayable = 0;
  for (const msg of messages) {
    if (msg.recipients.length === 0) continue;
    if (trace.supplementalHeader) {
      msg.prependHeader(
        trace.headerName,
        supplementalHeaderValue(
          msg.recipients.map((r) => r.email),
          msg.meta,
          trace.includeMetaNames,
        ),
      );
    }
    const first = msg.recipients[0];
    const verdict = await decideRelay(
      params.relayHosts,
      input.peerIp,
      msg.sender.domain,
      first.domain,
      input.relayCache,
    );
    // §10: a report to a log_oob/log_arf domain is logged (and relayed or consumed).
    const report = verdict.reportDomain
      ? await classifyReport(msg, await input.relayCache.get(first.domain))
      : null;
    if (!verdict.relay && report === null) continue;
    relayable++;
    let queue: string;
    try {
      queue = msg.queueName();
    } catch (e) {
      throw new PolicyError(`Cannot compute queue name: ${(e as Error).message}`);
    }
    accepted.push({ msg, queue, report });
  }
  if (relayable === 0 && messages.length > 0) {
    return { code: 550, text: "5.7.1 relaying not permitted" };
  }
  const toQueue = accepted.filter((a) =>
    a.queue !== "null" && a.report?.disposition !== "LogThenDrop"
  );
  // lua-api.md §3: a queue whose config, pool or sources cannot be resolved
  // refuses the message (421 4.3.0) before anything is spooled.
  await resolveQueues(services, toQueue.map((a) => a.queue), state);
  if (state.abandoned) return abandonedReply("resolve");

  // Spool every batch that will be queued; 250 only after both stores synced.
  state.stage = "spool";
  const spools = services.spools;
  if (spools === null) return { code: 451, text: "4.4.5 spool write timed out" };
  if (!params.deferredSpool) await spoolAll(spools, toQueue.map((a) => a.msg), state);
  if (state.abandoned) return abandonedReply("spool");

  // Point of no return: log Reception, hand over to the queue (`null` is dropped).
  state.committed = true;
  state.stage = "insert";
  for (const { msg, queue, report } of accepted) {
    logReceived(services.logs, input.log, msg, queue, report);
    countReceived("esmtp_listener"); // [metrics] cached child, no allocation
    if (input.log.listener) countReceived(listenerService(input.log.listener));
  }
  const results = await Promise.allSettled(toQueue.map(({ msg }) => services.handoff.insert(msg)));
  const failures: string[] = [];
  for (let i = 0; i < results.length; i++) {
    const r = results[i];
    const msg = toQueue[i].msg;
    if (r.status === "fulfilled") {
      queued.add(msg);
      continue;
    }
    failures.push(`${msg.id}: ${r.reason}`);
    diag.error(
      "kumod::smtp_server",
      `Cannot insert message "${msg.id}" into its queue: ${r.reason}`,
    );
    // Not queued: not kept either (upstream's insert_or_unwind).
    if (!params.deferredSpool) await unspool(spools, [msg]);
  }
  if (failures.length > 0 && failures.length === toQueue.length) {
    throw new PolicyError(
      `Cannot queue ${failures.length} message(s): ${failures.join(", ")}`,
    );
  }
  const ids = messages.map((m) => m.id).join(" ");
  return { code: 250, text: `${failures.length > 0 ? "PARTIAL" : "OK"} ids=${ids}` };
}

/** Resolve every distinct queue through the hand-off (no-op without queues). */
async function resolveQueues(
  services: ReceptionServices,
  queues: readonly string[],
  state: PhaseState,
): Promise<void> {
  const handoff = services.handoff;
  if (handoff.prepare === undefined) return;
  for (const name of new Set(queues)) {
    if (state.abandoned) return;
    try {
      await handoff.prepare(name);
    } catch (e) {
      throw new PolicyError(`Cannot resolve queue "${name}": ${(e as Error).message ?? e}`);
    }
  }
}

/**
 * Write meta and data of every message with sync. When a write fails, or
 * the phase was abandoned meanwhile, whatever was written is removed again
 * (so a refused message cannot reappear at the next start).
 */
async function spoolAll(spools: SpoolPair, msgs: readonly Message[], state: PhaseState) {
  const results = await Promise.allSettled(msgs.map((msg) => storeMessage(spools, msg)));
  const failed = results.find((r) => r.status === "rejected") as PromiseRejectedResult | undefined;
  if (failed === undefined && !state.abandoned) return;
  await unspool(spools, msgs);
  if (failed !== undefined && !state.abandoned) throw failed.reason;
}

/** Remove both records of each message (missing ones are fine). */
async function unspool(spools: SpoolPair, msgs: readonly Message[]): Promise<void> {
  await Promise.allSettled(
    msgs.flatMap((m) => [spools.meta.remove(m.id), spools.data.remove(m.id)]),
  );
}

/** Step 3: recipient batches, from the policy or `batch_handling`. */
async function splitTransaction(input: DataPhaseInput, txn: Message): Promise<EnvelopeAddress[][]> {
  const engine = input.services.engine;
  const rcpts = txn.recipients;
  if (engine.hasHandler("smtp_server_split_transaction")) {
    const v = await engine.callOrThrow("smtp_server_split_transaction", "mc", [txn, input.conn]);
    if (v !== undefined && v !== null) return parseBatches(v);
  }
  if (input.params.batchHandling === "BatchByDomain") {
    const byDomain = new Map<string, EnvelopeAddress[]>();
    for (const r of rcpts) {
      const key = r.domain.toLowerCase();
      const list = byDomain.get(key);
      if (list) list.push(r);
      else byDomain.set(key, [r]);
    }
    return [...byDomain.values()];
  }
  return rcpts.map((r) => [r]);
}

function parseBatches(v: unknown): EnvelopeAddress[][] {
  const list = Array.isArray(v)
    ? v
    : typeof v === "object" && v !== null && Object.keys(v).length === 0
    ? []
    : null;
  if (list === null) {
    throw new PolicyError(`smtp_server_split_transaction: expected an array of recipient arrays`);
  }
  return list.map((batch) => {
    const items = Array.isArray(batch)
      ? batch
      : typeof batch === "object" && batch !== null && Object.keys(batch).length === 0
      ? []
      : null;
    if (items === null) {
      throw new PolicyError(`smtp_server_split_transaction: expected an array of recipient arrays`);
    }
    return items.map((a) => {
      const email = typeof a === "string" ? a : typeof a === "object" && a !== null &&
          typeof (a as { email?: unknown }).email === "string"
        ? (a as { email: string }).email
        : null;
      if (email === null) {
        throw new PolicyError(`smtp_server_split_transaction: expected EnvelopeAddress values`);
      }
      return new Message({ sender: "", recipients: [email], data: null }).recipients[0];
    });
  });
}
