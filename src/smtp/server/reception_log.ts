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
import { type LogRecord, newLogRecord, responseFromReply } from "../../log/record.ts";
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
  const rec = newLogRecord("Rejection", responseFromReply(code, text, command), info.nodeId);
  rec.sender = sender;
  rec.recipient = recipient;
  rec.peer_address = { name: info.ehlo, addr: info.peerIp };
  rec.tls_cipher = info.tlsCipher;
  rec.tls_protocol_version = info.tlsProtocolVersion;
  rec.tls_peer_subject_name = info.tlsPeerSubjectName;
  rec.session_id = info.sessionId;
  return rec;
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
  const response = { code: 250, enhanced_code: null, content: "", command: null };
  const rec = newLogRecord("Reception", response, info.nodeId, msg.createdMs);
  const rcpts = msg.recipients;
  rec.id = msg.id;
  rec.sender = msg.sender.email;
  rec.recipient = rcpts.length === 1 ? rcpts[0].email : rcpts.map((r) => r.email);
  rec.queue = queue;
  rec.size = msg.data?.length ?? 0;
  rec.peer_address = { name: info.ehlo, addr: info.peerIp };
  rec.meta = msg.meta;
  const rp = msg.meta.reception_protocol;
  rec.reception_protocol = typeof rp === "string" ? rp : "ESMTP";
  rec.tls_cipher = info.tlsCipher;
  rec.tls_protocol_version = info.tlsProtocolVersion;
  rec.tls_peer_subject_name = info.tlsPeerSubjectName;
  rec.session_id = info.sessionId;
  return rec;
}

/** The log context of a message record (meta, lazily parsed headers, the message). */
export function messageLogContext(msg: Message): LogContext {
  return { meta: msg.meta, getAllHeaders: () => msg.getAllHeaders(), message: msg };
}
