/**
 * `kumo.apply_supplemental_trace_header(msg [, params])` (lua-api.md §8):
 * prepends the supplemental trace header exactly as the ESMTP listener
 * does after `smtp_server_message_received` — the same builder
 * (`supplementalHeaderValue`), so a message injected by policy carries the
 * same `X-KumoRef` a received one does.
 *
 * Place on the path: policy (host functions) → message. `params` takes the
 * keys of `start_esmtp_listener`'s `trace_headers` (`supplemental_header`,
 * `header_name`, `include_meta_names`; `received_header` is accepted and
 * has no effect here); unknown keys are refused. With
 * `supplemental_header = false` nothing is added.
 *
 * @module
 */

import { Message } from "../../message/message.ts";
import { supplementalHeaderValue } from "../../smtp/server/trace_headers.ts";
import { array, bool, convert, dflt, object, string } from "../config/schema.ts";

const TRACE_PARAMS = object({
  received_header: dflt(bool(), true),
  supplemental_header: dflt(bool(), true),
  header_name: dflt(string(), "X-KumoRef"),
  include_meta_names: dflt(array(string()), () => []),
}, { name: "TraceHeaderConf" });

type Fn = (...args: never[]) => unknown;

/**
 * Prepend the supplemental header to `msg` per `params` (nil = defaults).
 *
 * @example
 * ```ts
 * applySupplementalTraceHeader(msg, { include_meta_names: ["tenant"] });
 * msg.getFirstNamedHeaderValue("X-KumoRef"); // base64 JSON
 * ```
 */
export function applySupplementalTraceHeader(msg: unknown, params?: unknown): void {
  if (!(msg instanceof Message)) {
    throw new TypeError(
      "kumo.apply_supplemental_trace_header: expected a message (msg or kumo.make_message)",
    );
  }
  const p = convert(TRACE_PARAMS, params ?? {});
  if (!p.supplementalHeader) return;
  msg.prependHeader(
    p.headerName,
    supplementalHeaderValue(
      msg.recipients.map((r) => r.email),
      msg.meta,
      p.includeMetaNames,
    ),
  );
}

/** The binding, for the long-tail catalogue (its glue unwraps the Message). */
export const TRACE_HEADER_FUNCTIONS: Record<string, Fn> = {
  apply_supplemental_trace_header:
    ((msg: unknown, params?: unknown) => applySupplementalTraceHeader(msg, params)) as Fn,
};
