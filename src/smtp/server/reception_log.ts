/**
 * Log records of the inbound SMTP stage: `Reception` (one per accepted
 * batch) and `Rejection` (every 4xx/5xx reply except `421 4.3.2 …`),
 * shaped per logs.md §1–§2.
 *
 * Place on the mail's path: built by the session's reply writer and by the
 * DATA phase, submitted to the LogDispatcher. Pure record building; never
 * waits on the log writer.
 *
 * @module
 */

import type { Message } from "../../message/message.ts";
import {
  formatRfc3339Nanos,
  type LogRecord,
  nowEpochMs,
  responseFromReply,
} from "../../log/record.ts";
import type { LogContext } from "../../log/local_logger.ts";
import { countRejection } from "../../metrics/kumo_metrics.ts"; // [metrics]

/** What a session knows about itself, for records. */
export interface SessionLogInfo {
  /** EHLO/HELO argument or `""`. */
  ehlo: string;
  peerIp: string;
  sessionId: string;
  nodeId: string;
  tlsCipher?: string;
  tlsProtocolVersion?: string;
  /** Verified client certificate subject (`tls_required_client_ca`). */
  tlsPeerSubjectName?: string[];
  /** [metrics] The listener's bound address (`smtp_server_rejections{service="<addr>"}`). */
  listener?: string;
}

/** True when a reply must be logged as `Rejection` (4xx/5xx except `421 4.3.2 …`). */
export function isLoggedRejection(code: number, text: string): boolean {
  if (code < 400 || code > 599) return false;
  return !(code === 421 && text.startsWith("4.3.2 "));
}

/**
 * A `Rejection` record for a reply the server sent.
 *
 * @param command the command line (no CRLF), `"DATA"` for end-of-data, `null` at banner time
 * @example
 * ```ts
 * rejectionRecord(info, 550, "5.7.1 relaying not permitted for 1.2.3.4:5", "RCPT TO:<a@b>", "", "");
 * ```
 */
export function rejectionRecord(
  info: SessionLogInfo,
  code: number,
  text: string,
  command: string | null,
  sender: string,
  recipient: string,
): LogRecord {
  countRejection(info.listener); // [metrics] smtp_server_rejections{service="total"|"<addr>"}
  const now = nowEpochMs();
  const secs = Math.floor(now / 1000);
  const time = formatRfc3339Nanos(now);
  return {
    type: "Rejection",
    id: "",
    sender,
    recipient,
    queue: "",
    site: "",
    size: 0,
    response: responseFromReply(code, text, command),
    peer_address: { name: info.ehlo, addr: info.peerIp },
    timestamp: secs,
    event_time: time,
    created: secs,
    created_time: time,
    num_attempts: 0,
    bounce_classification: "Uncategorized",
    egress_pool: null,
    egress_source: null,
    source_address: null,
    feedback_report: null,
    meta: {},
    headers: {},
    delivery_protocol: null,
    reception_protocol: null,
    nodeid: info.nodeId,
    tls_cipher: info.tlsCipher,
    tls_protocol_version: info.tlsProtocolVersion,
    tls_peer_subject_name: info.tlsPeerSubjectName,
    session_id: info.sessionId,
  };
}

/**
 * A `Reception` record for one accepted batch.
 *
 * @example
 * ```ts
 * logs.submit(receptionRecord(info, msg, queueName), receptionContext(msg));
 * ```
 */
export function receptionRecord(info: SessionLogInfo, msg: Message, queue: string): LogRecord {
  const now = nowEpochMs();
  const created = msg.createdMs;
  const rcpts = msg.recipients;
  return {
    type: "Reception",
    id: msg.id,
    sender: msg.sender.email,
    recipient: rcpts.length === 1 ? rcpts[0].email : rcpts.map((r) => r.email),
    queue,
    site: "",
    size: msg.data?.length ?? 0,
    response: { code: 250, enhanced_code: null, content: "", command: null },
    peer_address: { name: info.ehlo, addr: info.peerIp },
    timestamp: Math.floor(now / 1000),
    event_time: formatRfc3339Nanos(now),
    created: Math.floor(created / 1000),
    created_time: formatRfc3339Nanos(created),
    num_attempts: 0,
    bounce_classification: "Uncategorized",
    egress_pool: null,
    egress_source: null,
    source_address: null,
    feedback_report: null,
    meta: msg.meta,
    headers: {},
    delivery_protocol: null,
    reception_protocol: typeof msg.meta.reception_protocol === "string"
      ? msg.meta.reception_protocol
      : "ESMTP",
    nodeid: info.nodeId,
    tls_cipher: info.tlsCipher,
    tls_protocol_version: info.tlsProtocolVersion,
    tls_peer_subject_name: info.tlsPeerSubjectName,
    session_id: info.sessionId,
  };
}

/** The log context of a message record (meta, lazily parsed headers, the message). */
export function messageLogContext(msg: Message): LogContext {
  return { meta: msg.meta, getAllHeaders: () => msg.getAllHeaders(), message: msg };
}
