/**
 * `kumo.generate_rfc3464_message(params, msg, log_record)` (lua-api.md §8):
 * a non-delivery report for a `Bounce` or `Expiration` log record, as a
 * Message addressed to the original sender from the null sender, ready for
 * `kumo.inject_message`; nil when no report applies.
 *
 * Place on the path: policy (host functions) → message. `params` is strict
 * (`include_original_message` = `'FullContent'|'HeadersOnly'|'No'` and
 * `reporting_mta = {mta_type=, name=}` required; `enable_bounce`,
 * `enable_expiration`, `stable_content` default false). `log_record` is a
 * record as log hooks and `log_disposition_*` handlers receive it
 * (`type`, `sender`, `recipient`, `created`, `timestamp`, `response`,
 * `peer_address`, `delivery_protocol`). The report itself is built by
 * message/rfc3464_report.ts.
 *
 * @module
 */

import { Message } from "../../message/message.ts";
import { NULL_SENDER } from "../../message/envelope_address.ts";
import {
  generateRfc3464Report,
  type ReportParams,
  type ReportRecord,
} from "../../message/rfc3464_report.ts";
import { multi } from "../lua_context.ts";
import { bool, convert, dflt, enumOf, object, req, string } from "../config/schema.ts";

type Fn = (...args: never[]) => unknown;

const PARAMS = object({
  include_original_message: req(enumOf(["FullContent", "HeadersOnly", "No"])),
  enable_expiration: dflt(bool(), false),
  enable_bounce: dflt(bool(), false),
  reporting_mta: req(object({
    mta_type: req(string()),
    name: req(string()),
  }, { name: "RemoteMta" })),
  stable_content: dflt(bool(), false),
}, { name: "ReportGenerationParams" });

const FN = "kumo.generate_rfc3464_message";

function field(rec: Record<string, unknown>, key: string, want: string): never {
  throw new TypeError(
    `${FN}: log_record.${key} ${
      rec[key] === undefined ? "is missing" : "is invalid"
    }: expected ${want}`,
  );
}

/** Read the used fields of a Lua log record table. */
export function reportRecord(v: unknown): ReportRecord {
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new TypeError(`${FN}: expected a log record table as the third argument`);
  }
  const rec = v as Record<string, unknown>;
  const str = (
    k: string,
  ) => (typeof rec[k] === "string" ? rec[k] as string : field(rec, k, "a string"));
  const secs = (k: string) =>
    typeof rec[k] === "number" ? (rec[k] as number) * 1000 : field(rec, k, "unix seconds");
  const recipient = rec.recipient;
  const recipients = typeof recipient === "string"
    ? [recipient]
    : Array.isArray(recipient) && recipient.every((r) => typeof r === "string")
    ? recipient as string[]
    : field(rec, "recipient", "a string or a list of strings");
  const resp = rec.response as Record<string, unknown> | undefined;
  if (!resp || typeof resp.code !== "number" || typeof resp.content !== "string") {
    field(rec, "response", "{ code = <int>, content = <string>, ... }");
  }
  const enh = resp!.enhanced_code as Record<string, number> | null | undefined;
  const peer = rec.peer_address as Record<string, unknown> | null | undefined;
  return {
    type: str("type"),
    sender: str("sender"),
    recipients,
    createdMs: secs("created"),
    timestampMs: secs("timestamp"),
    response: {
      code: resp!.code as number,
      content: resp!.content as string,
      enhancedCode: enh && typeof enh === "object" && typeof enh.class === "number"
        ? { class: enh.class, subject: enh.subject, detail: enh.detail }
        : null,
    },
    peerAddress: peer && typeof peer === "object" && typeof peer.name === "string"
      ? { name: peer.name, addr: String(peer.addr ?? "") }
      : null,
    deliveryProtocol: typeof rec.delivery_protocol === "string" ? rec.delivery_protocol : null,
  };
}

/**
 * The report as a Message, or `undefined` when none applies.
 *
 * @example
 * ```ts
 * const ndr = generateRfc3464Message(
 *   { include_original_message: "No", enable_bounce: true, reporting_mta: { mta_type: "dns", name: "mx.test" } },
 *   undefined, record);
 * ```
 */
export function generateRfc3464Message(
  params: unknown,
  msg: unknown,
  logRecord: unknown,
): Message | undefined {
  const p = convert(PARAMS, params);
  if (msg !== undefined && msg !== null && !(msg instanceof Message)) {
    throw new TypeError(`${FN}: the second argument must be a message or nil`);
  }
  const rec = reportRecord(logRecord);
  const reportParams: ReportParams = {
    includeOriginalMessage: p.includeOriginalMessage,
    enableBounce: p.enableBounce,
    enableExpiration: p.enableExpiration,
    reportingMta: { mtaType: p.reportingMta.mtaType, name: p.reportingMta.name },
    stableContent: p.stableContent,
  };
  const original = msg instanceof Message ? new TextDecoder().decode(msg.getData()) : undefined;
  const text = generateRfc3464Report(reportParams, rec, original);
  if (text === null) return undefined;
  return new Message({
    sender: NULL_SENDER,
    recipients: [rec.sender],
    data: new TextEncoder().encode(text),
    meta: {},
  });
}

/** The binding, for the long-tail catalogue (its glue unwraps and wraps Messages). */
export const RFC3464_FUNCTIONS: Record<string, Fn> = {
  generate_rfc3464_message: ((params: unknown, msg: unknown, rec: unknown) =>
    // multi(): an explicit nil when no report applies
    generateRfc3464Message(params, msg, rec) ?? multi(undefined)) as Fn,
};
