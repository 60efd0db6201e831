/**
 * The contract between a ready queue and a non-SMTP delivery protocol
 * (`custom_lua`, `maildir_path`; lua-api §6.3): a driver opens one session
 * per dispatcher, the session delivers batches of messages and says per
 * message what became of it.
 *
 * Place on the path: egress, beside the SMTP client. The ready queue keeps
 * its dispatching (connection limit, idle reuse, throttles) and only asks
 * the driver to open, send and close. A driver never logs and never
 * re-schedules: outcomes go back as values.
 *
 * @module
 */

import type { Message } from "../message/message.ts";
import type { PeerAddress, ResponseRecord } from "../log/record.ts";

/** Queue-name components of the scheduled queue a session is opened for. */
export interface SessionComponents {
  domain: string;
  tenant?: string;
  campaign?: string;
  routingDomain?: string;
}

/** What became of one message of a batch. */
export interface SessionResult {
  outcome: "Delivery" | "TransientFailure" | "Bounce";
  response: ResponseRecord;
}

/** One open delivery session (a custom_lua connection object, a maildir writer). */
export interface DeliverySession {
  /**
   * Deliver `batch` (at least one message); one result per message, in
   * order. Throwing means an unspecified failure: the session is closed and
   * the whole batch fails transiently.
   */
  send(batch: readonly Message[]): Promise<SessionResult[]>;
  /** True once the session must not be used again (e.g. after a 421). */
  readonly closed: boolean;
  /** End the session (custom_lua `close`); never throws. */
  close(): Promise<void>;
}

/** A non-SMTP delivery protocol. */
export interface DeliveryDriver {
  /** `delivery_protocol` of the log records: `"Lua"`, `"Maildir"`. */
  readonly deliveryProtocol: string;
  /** `peer_address` of the log records. */
  readonly peer: PeerAddress | null;
  /** Most messages per `send`. @default 1 */
  readonly batchSize: number;
  /** Wait for this many messages (up to `maxBatchLatency`) before sending. */
  readonly minBatchSize: number;
  /** ms to wait for `minBatchSize`; 0 = send whatever is ready. */
  readonly maxBatchLatency: number;
  /** Open a session; throwing fails the waiting message transiently. */
  open(components: SessionComponents): Promise<DeliverySession>;
}

/** A response record for an internal or Lua-produced outcome (no enhanced code parsing). */
export function plainResponse(code: number, content: string): ResponseRecord {
  return { code, enhanced_code: null, content: content.replace(/\r\n|\r|\n/g, " "), command: null };
}
