/**
 * Incoming DSN / ARF handling at end of DATA (queues-and-delivery.md §10,
 * logs.md §3–§4): decide whether a batch addressed to a `log_oob` /
 * `log_arf` listener domain is a report, and build its `Feedback` or `OOB`
 * records.
 *
 * Place on the mail's path: called by the DATA phase (data_phase.ts) per
 * batch after `smtp_server_message_received`, before spooling. ARF is
 * checked first, then DSN. The DATA phase owns what follows (spool or not,
 * queue or not, the reply); this file only classifies and builds records.
 * A report that fails to parse is treated as ordinary mail (logged at
 * debug), never as an error of the transaction.
 *
 * @module
 */

import type { Message } from "../../message/message.ts";
import {
  type ArfReport,
  type DsnPerRecipient,
  type DsnReport,
  parseRfc3464,
  parseRfc5965,
} from "../../message/report_parser.ts";
import type { ListenerDomain, ReportDisposition } from "../../policy/config/listener_domain.ts";
import { type LogRecord, newLogRecord, nowEpochMs } from "../../log/record.ts";
import { diag } from "../../log/diag.ts";
import { messageLogContext, receptionRecord, type SessionLogInfo } from "./reception_log.ts";
import type { LogDispatcher } from "../../log/local_logger.ts";

/** What end of DATA found in a batch to a report domain. */
export type ReportVerdict =
  | { kind: "arf"; disposition: ReportDisposition; report: ArfReport }
  | { kind: "dsn"; disposition: ReportDisposition; report: DsnReport };

/**
 * Classify a batch: an ARF report when the domain logs ARF, else a DSN when
 * it logs OOB, else `null` (ordinary mail).
 *
 * @example
 * ```ts
 * const v = await classifyReport(msg, await relayCache.get(msg.recipients[0].domain));
 * if (v?.disposition === "LogThenDrop") { ... }
 * ```
 */
export async function classifyReport(
  msg: Message,
  domain: ListenerDomain | null,
): Promise<ReportVerdict | null> {
  if (domain === null || msg.data === null) return null;
  try {
    if (domain.logArf !== "Ignore") {
      const report = await parseRfc5965(msg.data);
      if (report !== null) return { kind: "arf", disposition: domain.logArf, report };
    }
    if (domain.logOob !== "Ignore") {
      const report = await parseRfc3464(msg.data);
      if (report !== null) return { kind: "dsn", disposition: domain.logOob, report };
    }
  } catch (e) {
    diag.debug(
      "kumod::smtp_server",
      `Cannot parse report in message "${msg.id}": ${(e as Error).message}`,
    );
  }
  return null;
}

/**
 * The `Feedback` record that replaces `Reception` for an ARF report.
 *
 * @example
 * ```ts
 * logs.submit(feedbackRecord(info, msg, queue, report), messageLogContext(msg));
 * ```
 */
export function feedbackRecord(
  info: SessionLogInfo,
  msg: Message,
  queue: string,
  report: ArfReport,
): LogRecord {
  const rec = receptionRecord(info, msg, queue);
  rec.type = "Feedback";
  rec.feedback_report = report;
  return rec;
}

/** `response` of an OOB record from a per-recipient block (logs.md §3). */
function oobResponse(entry: DsnPerRecipient): LogRecord["response"] {
  const diagCode = entry.diagnostic_code;
  let code = 550;
  let content = "";
  if (diagCode !== null && diagCode.diagnostic_type.toLowerCase() === "smtp") {
    const m = /^(\d+)(?:\s+|$)([\s\S]*)$/.exec(diagCode.diagnostic);
    if (m) {
      code = Number(m[1]);
      content = m[2];
    } else {
      content = diagCode.diagnostic;
    }
  }
  const s = entry.status;
  return {
    code,
    enhanced_code: { class: s.class, subject: s.subject, detail: s.detail },
    content: content.replace(/\r\n|\r|\n/g, " "),
    command: null,
  };
}

/**
 * One `OOB` record per `failed` recipient of a DSN, in report order.
 *
 * @example
 * ```ts
 * for (const r of oobRecords(info, msg, queue, dsn)) logs.submit(r, messageLogContext(msg));
 * ```
 */
export function oobRecords(
  info: SessionLogInfo,
  msg: Message,
  queue: string,
  report: DsnReport,
): LogRecord[] {
  const out: LogRecord[] = [];
  const created = msg.createdMs;
  const sender = msg.recipients[0]?.email ?? "";
  for (const entry of report.per_recipient) {
    if (entry.action !== "failed") continue;
    const when = entry.last_attempt_date !== null
      ? Date.parse(entry.last_attempt_date)
      : nowEpochMs();
    const rec = newLogRecord("OOB", oobResponse(entry), info.nodeId, created, when);
    rec.id = msg.id;
    rec.sender = sender;
    rec.recipient = (entry.original_recipient ?? entry.final_recipient).recipient;
    rec.queue = queue;
    rec.peer_address = { name: report.per_message.reporting_mta.name, addr: info.peerIp };
    rec.meta = msg.meta;
    const rp = msg.meta.reception_protocol;
    rec.reception_protocol = typeof rp === "string" ? rp : "ESMTP";
    rec.session_id = info.sessionId;
    out.push(rec);
  }
  return out;
}

/**
 * Log an accepted batch: `Feedback` for an ARF report, else `Reception`
 * followed by the `OOB` records of a DSN.
 *
 * @example
 * ```ts
 * logReceived(services.logs, input.log, msg, queue, verdict);
 * ```
 */
export function logReceived(
  logs: LogDispatcher,
  info: SessionLogInfo,
  msg: Message,
  queue: string,
  report: ReportVerdict | null,
): void {
  const ctx = messageLogContext(msg);
  if (report?.kind === "arf") {
    logs.submit(feedbackRecord(info, msg, queue, report.report), ctx);
    return;
  }
  logs.submit(receptionRecord(info, msg, queue), ctx);
  if (report?.kind === "dsn") {
    for (const rec of oobRecords(info, msg, queue, report.report)) logs.submit(rec, ctx);
  }
}
