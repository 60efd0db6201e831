/**
 * `msg:method(...)` for policy: the Message API of lua-api.md §7.1 mapped
 * onto the Message class.
 *
 * Place on the path: policy → message. Thin: argument checks and value
 * shapes only; the work is done by message/.
 *
 * @module
 */

import type { Message } from "../message/message.ts";
import type { EnvelopeAddress } from "../message/envelope_address.ts";
import { parseAddressList } from "../message/address_header.ts";
import { parseRfc3464, parseRfc5965 } from "../message/report_parser.ts";
import { checkFixConformance, parseConformanceFlags } from "../message/conformance.ts";
import { type DkimSigner, dkimSignMessage } from "./host/dkim.ts";

function addr(a: EnvelopeAddress): EnvelopeAddress {
  return { user: a.user, domain: a.domain, email: a.email };
}

function str(v: unknown, what: string): string {
  if (typeof v !== "string") throw new TypeError(`${what} must be a string`);
  return v;
}

function names(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new TypeError("expected an array of header names");
  return v.map(String);
}

/** The Message methods, by Lua name. */
export const MESSAGE_METHODS: Record<string, (msg: Message, ...args: never[]) => unknown> = {
  id: (m) => m.id,
  sender: (m) => addr(m.sender),
  set_sender: (m, a: string) => m.setSender(str(a, "msg:set_sender: address")),
  recipient_list: (m) => m.recipientList().map(addr),
  set_recipient: (m, a: string | string[]) => m.setRecipient(a),
  get_meta: (m, k: string) => m.getMeta(str(k, "msg:get_meta: key")),
  set_meta: (m, k: string, v: unknown) => m.setMeta(str(k, "msg:set_meta: key"), v ?? null),
  get_data: (m) => m.getDataString(),
  set_data: (m, d: string) => m.setData(str(d, "msg:set_data: data")),
  prepend_header: (m, n: string, v: string, enc?: boolean) =>
    m.prependHeader(str(n, "header name"), str(v, "header value"), Boolean(enc)),
  append_header: (m, n: string, v: string, enc?: boolean) =>
    m.appendHeader(str(n, "header name"), str(v, "header value"), Boolean(enc)),
  get_first_named_header_value: (m, n: string) => m.getFirstNamedHeaderValue(str(n, "name")),
  get_all_named_header_values: (m, n: string) => m.getAllNamedHeaderValues(str(n, "name")),
  get_all_headers: (m) => m.getAllHeaders().map((h) => [h.name, h.value]),
  remove_all_named_headers: (m, n: string) => m.removeAllNamedHeaders(str(n, "name")),
  remove_x_headers: (m, list?: string[]) => m.removeXHeaders(names(list)),
  import_x_headers: (m, list?: string[]) => m.importXHeaders(names(list)),
  check_fix_conformance: (m, checks: string, fixes?: string) => {
    const r = checkFixConformance(
      m.getData(),
      parseConformanceFlags(str(checks ?? "", "msg:check_fix_conformance: checks")),
      parseConformanceFlags(str(fixes ?? "", "msg:check_fix_conformance: fixes")),
      { id: m.id, hostname: String(m.getMeta("hostname") ?? "localhost") },
    );
    if (r.data) m.setData(r.data);
    return r.error;
  },
  get_address_header: (m, n: string) => {
    const v = m.getFirstNamedHeaderValue(str(n, "name"));
    if (v === undefined) return undefined;
    return { list: parseAddressList(v) };
  },
  queue_name: (m) => m.queueName(),
  num_attempts: (m) => m.numAttempts,
  increment_num_attempts: (m) => m.incrementNumAttempts(),
  set_due: (m, t?: string) => {
    if (t === undefined || t === null) {
      m.due = Date.now();
    } else {
      const ms = Date.parse(String(t));
      if (Number.isNaN(ms)) throw new TypeError(`msg:set_due: invalid time "${t}"`);
      m.due = Math.max(ms, Date.now());
    }
    return new Date(m.due).toISOString();
  },
  set_scheduling: (m, s: unknown) => m.setScheduling(s ?? undefined),
  import_scheduling_header: (m, name: string, remove?: boolean) => {
    const v = m.getFirstNamedHeaderValue(str(name, "name"));
    if (v === undefined) return undefined;
    const sched = m.setScheduling(JSON.parse(v));
    if (remove) m.removeAllNamedHeaders(name);
    return sched;
  },
};

/**
 * Message methods whose work is asynchronous; Lua calls them through
 * `kumo.__msg_async(msg, name, ...)` (see the prelude) and awaits the result.
 */
export const ASYNC_MESSAGE_METHODS: Record<
  string,
  (msg: Message, ...args: never[]) => Promise<unknown>
> = {
  dkim_sign: (m, signer: DkimSigner) => dkimSignMessage(m, signer),
  parse_rfc3464: (m) => parseRfc3464(m.getData()),
  parse_rfc5965: (m) => parseRfc5965(m.getData()),
};

/** `kumo.__msg_async`, the host side of {@link ASYNC_MESSAGE_METHODS}. */
export const MESSAGE_ASYNC_FUNCTIONS: Record<string, (...args: never[]) => Promise<unknown>> = {
  __msg_async: ((msg: Message, method: string, ...args: never[]) => {
    const f = ASYNC_MESSAGE_METHODS[method];
    if (!f) return Promise.reject(new Error(`Message has no method named "${method}"`));
    return f(msg, ...args);
  }) as (...args: never[]) => Promise<unknown>,
};
