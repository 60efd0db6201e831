/**
 * `msg:method(...)` for policy: the Message API of lua-api.md §7.1 mapped
 * onto the Message class.
 *
 * Place on the path: policy → message. Thin: argument checks and value
 * shapes only; the work is done by message/. The spool-control methods
 * (`save`, `shrink`, `shrink_data`) and the reload of shrunk data reach the
 * spools through the PolicyRuntime the server binds; `set_force_sync`
 * marks the message so that every later spool write of it is synced.
 *
 * @module
 */

import type { Message } from "../message/message.ts";
import type { EnvelopeAddress } from "../message/envelope_address.ts";
import {
  addressHeaderJson,
  parseAddressHeader,
  singleAddressProblem,
} from "../message/address_header.ts";
import { parseImportHeaderSpecs } from "../message/import_headers.ts";
import { parseRfc3464, parseRfc5965 } from "../message/report_parser.ts";
import { checkFixConformance, parseConformanceFlags } from "../message/conformance.ts";
import type { SpoolPair } from "../spool/spool.ts";
import { type DkimSigner, dkimSignMessage } from "./host/dkim.ts";
import { dkimVerifyMessage } from "./host/dkim_verify.ts";
import {
  formatAuthenticationResults,
  parseAuthenticationResults,
} from "../message/auth_results.ts";
import type { Resolver } from "../dns/resolver.ts";
import type { PolicyRuntime } from "./runtime.ts";

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

/** `msg:set_recipient` argument: the prelude turned EnvelopeAddresses into strings. */
function recipients(v: unknown): string | string[] {
  if (typeof v === "string") return v;
  // An empty Lua table arrives as an empty object.
  const list = Array.isArray(v)
    ? v
    : typeof v === "object" && v !== null && Object.keys(v).length === 0
    ? []
    : null;
  if (list === null || !list.every((x) => typeof x === "string")) {
    throw new TypeError(
      `msg:set_recipient: invalid recipient ${
        JSON.stringify(v) ?? String(v)
      }: expected a string, an EnvelopeAddress or an array of them`,
    );
  }
  return list as string[];
}

/** The Message methods, by Lua name. */
export const MESSAGE_METHODS: Record<string, (msg: Message, ...args: never[]) => unknown> = {
  id: (m) => m.id,
  sender: (m) => addr(m.sender),
  set_sender: (m, a: string) => m.setSender(str(a, "msg:set_sender: address")),
  recipient_list: (m) => m.recipientList().map(addr),
  set_recipient: (m, a: unknown) => m.setRecipient(recipients(a)),
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
  import_headers: (m, specs: unknown) => m.importHeaders(parseImportHeaderSpecs(specs)),
  // The prelude wraps this in an AddressHeader: `list` entries, upstream's
  // JSON for tostring(), and why the single-address fields would raise.
  get_address_header: (m, n: string) => {
    const v = m.getFirstNamedHeaderValue(str(n, "name"));
    if (v === undefined) return undefined;
    const entries = parseAddressHeader(v);
    return {
      list: entries.flatMap((e) => e.kind === "mailbox" ? [e.mailbox] : e.mailboxes),
      json: addressHeaderJson(entries),
      problem: singleAddressProblem(entries),
    };
  },
  add_authentication_results: (m, servId: string, results: unknown) =>
    m.prependHeader(
      "Authentication-Results",
      formatAuthenticationResults(
        str(servId, "msg:add_authentication_results: serv_id"),
        parseAuthenticationResults(results),
      ),
    ),
  set_force_sync: (m, b: boolean) => {
    m.forceSync = Boolean(b);
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

/** Messages {@link saveMessage} wrote to the spools (`msg:save()`, `shrink*`). */
const savedMessages = new WeakSet<Message>();

/**
 * True when {@link saveMessage} wrote (or tried to write) records of `msg`:
 * reception removes them again when it does not accept the message.
 *
 * @example
 * ```ts
 * if (wasSaved(msg)) await unspool(spools, [msg]);
 * ```
 */
export function wasSaved(msg: Message): boolean {
  return savedMessages.has(msg);
}

/**
 * Write what changed of `msg` to the spools: data first (a meta record
 * without its data is dropped at spool-in), then meta. Synced when `sync`
 * or the message has `forceSync`.
 *
 * @example
 * ```ts
 * await saveMessage(msg, spools, false);
 * ```
 */
export async function saveMessage(msg: Message, spools: SpoolPair, sync: boolean): Promise<void> {
  const opts = { sync: sync || msg.forceSync };
  if (msg.dataDirty || msg.metaDirty) savedMessages.add(msg);
  if (msg.dataDirty && msg.data !== null) {
    msg.dataDirty = false;
    try {
      await spools.data.store(msg.id, msg.data, opts);
    } catch (e) {
      msg.dataDirty = true;
      throw e;
    }
  }
  if (msg.metaDirty) {
    msg.metaDirty = false;
    try {
      await spools.meta.store(msg.id, msg.metaBytes(), opts);
    } catch (e) {
      msg.metaDirty = true;
      throw e;
    }
  }
}

/**
 * Load the bytes of a shrunk message back from the data spool (no-op when
 * they are in memory).
 *
 * @throws {Error} when the spools are not open or the data spool has no record.
 */
export async function loadMessageData(
  msg: Message,
  spools: SpoolPair | undefined | null,
): Promise<void> {
  if (msg.data !== null) return;
  if (!spools) {
    throw new Error(`Cannot load data of message "${msg.id}": the spools are not open`);
  }
  const bytes = await spools.data.load(msg.id);
  if (msg.data !== null) return; // set meanwhile
  if (bytes === null) {
    throw new Error(`Cannot load data of message "${msg.id}": not in the data spool`);
  }
  msg.data = bytes;
  msg.dataDirty = false;
}

function spoolsOf(runtime: PolicyRuntime, method: string): SpoolPair {
  if (!runtime.spools) {
    throw new Error(
      `Cannot call msg:${method}(): the spools are not open (not available under --validate or during init)`,
    );
  }
  return runtime.spools;
}

/**
 * Message methods whose work is asynchronous, bound to the runtime; Lua
 * calls them through `kumo.__msg_async(msg, name, ...)` (see the prelude) and
 * awaits the result. `__load_data` is the prelude's reload of shrunk data.
 */
export function asyncMessageMethods(
  runtime: PolicyRuntime,
  resolverFor: (name?: string) => Resolver = noResolver,
): Record<string, (msg: Message, ...args: never[]) => Promise<unknown>> {
  return {
    dkim_verify: async (m, resolverName?: string) => {
      const resolver = resolverFor(resolverName ?? undefined);
      await loadMessageData(m, runtime.spools);
      return await dkimVerifyMessage(m.getData(), resolver);
    },
    dkim_sign: async (m, signer: DkimSigner) => {
      await loadMessageData(m, runtime.spools);
      return await dkimSignMessage(m, signer);
    },
    parse_rfc3464: async (m) => {
      await loadMessageData(m, runtime.spools);
      return await parseRfc3464(m.getData());
    },
    parse_rfc5965: async (m) => {
      await loadMessageData(m, runtime.spools);
      return await parseRfc5965(m.getData());
    },
    save: (m) => saveMessage(m, spoolsOf(runtime, "save"), false),
    // Shrinking drops the only in-memory copy: its spool write is synced.
    shrink_data: async (m) => {
      const spools = spoolsOf(runtime, "shrink_data");
      if (m.data === null) return;
      await saveMessage(m, spools, true);
      if (!m.dataDirty) m.dropData();
    },
    // Meta stays in memory (the server reads it synchronously): as shrink_data.
    shrink: async (m) => {
      const spools = spoolsOf(runtime, "shrink");
      if (m.data === null && !m.metaDirty) return;
      await saveMessage(m, spools, true);
      if (!m.dataDirty) m.dropData();
    },
    __load_data: (m) => loadMessageData(m, runtime.spools),
  };
}

function noResolver(): Resolver {
  throw new Error("Cannot call msg:dkim_verify(): no DNS resolver is configured");
}

/**
 * `kumo.__msg_async`, the host side of {@link asyncMessageMethods};
 * `resolverFor` gives the Resolver for an optional `define_resolver` name.
 */
export function messageAsyncFunctions(
  runtime: PolicyRuntime,
  resolverFor?: (name?: string) => Resolver,
): Record<string, (...args: never[]) => Promise<unknown>> {
  const methods = asyncMessageMethods(runtime, resolverFor);
  return {
    __msg_async: ((msg: Message, method: string, ...args: never[]) => {
      const f = methods[method];
      if (!f) return Promise.reject(new Error(`Message has no method named "${method}"`));
      try {
        return f(msg, ...args);
      } catch (e) {
        return Promise.reject(e);
      }
    }) as (...args: never[]) => Promise<unknown>,
  };
}
