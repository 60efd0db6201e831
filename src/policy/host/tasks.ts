/**
 * Policy functions that act on the running server: `kumo.spawn_task`,
 * `kumo.make_message`, `kumo.inject_message` and
 * `kumo.api.admin.{bounce,suspend,suspend_ready_q}.*` (http-api.md §7).
 *
 * Place on the path: policy. `spawn_task{event_name=, args={}}` runs the
 * event in another pooled Lua context without waiting (the handler gets ONE
 * argument, the args array; errors go to the diagnostic log; a no-op under
 * `--validate`). `make_message(sender, recipient, body)` builds a Message
 * usable with every `msg:` method. `inject_message(msg [, deferred_spool])`
 * and the admin functions go through the late-bound {@link PolicyRuntime}
 * and raise a clear error while it is unbound (`--validate`, `init`).
 *
 * Admin functions take the HTTP request bodies as Lua tables:
 * `bounce.bounce{reason=, domain=, ...}` → `{ id, bounced = {}, total_bounced = 0 }`,
 * `bounce.list()` → array, `bounce.delete(id | {id=})` → boolean; likewise
 * `suspend.suspend{...}` → `{ id }` and `suspend_ready_q.suspend{name=, reason=}` → `{ id }`.
 *
 * @module
 */

import { Message } from "../../message/message.ts";
import type { PolicyEngine } from "../engine.ts";
import { type PolicyRuntime, runtimeUnavailable } from "../runtime.ts";
import { diag } from "../../log/diag.ts";
import { bytesArg } from "./host_object.ts";

type Fn = (...args: never[]) => unknown;
type AsyncFn = (...args: never[]) => Promise<unknown>;

function addressOf(v: unknown, what: string): string {
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null && typeof (v as { email?: unknown }).email === "string") {
    return (v as { email: string }).email;
  }
  throw new TypeError(`kumo.make_message: ${what} must be an address string or EnvelopeAddress`);
}

function idOf(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null && typeof (v as { id?: unknown }).id === "string") {
    return (v as { id: string }).id;
  }
  throw new TypeError("expected an id string or { id = '...' }");
}

/** The sync and async functions of this module. */
export function taskFunctions(
  engine: () => PolicyEngine | undefined,
  runtime: PolicyRuntime,
): { sync: Record<string, Fn>; async: Record<string, AsyncFn> } {
  const admin = (fn: string) => {
    if (!runtime.admin) throw runtimeUnavailable(fn);
    return runtime.admin;
  };
  const sync: Record<string, Fn> = {
    spawn_task: ((params: unknown) => {
      const p = (params ?? {}) as Record<string, unknown>;
      if (typeof p !== "object" || typeof p.event_name !== "string") {
        throw new TypeError("kumo.spawn_task: expected { event_name = '...', args = {...} }");
      }
      for (const k of Object.keys(p)) {
        if (k !== "event_name" && k !== "args") {
          throw new TypeError(
            `deserialize error: unknown field \`${k}\`, expected \`event_name\` or \`args\``,
          );
        }
      }
      const e = engine();
      if (!e || e.validating) return;
      const name = p.event_name;
      const args = Array.isArray(p.args) ? p.args : [];
      e.call(name, "", [args]).then((r) => {
        if (r.kind === "error") diag.error("kumod::lua", `spawn_task "${name}": ${r.message}`);
        if (r.kind === "reject") {
          diag.error("kumod::lua", `spawn_task "${name}": ${r.code} ${r.message}`);
        }
      }, (err) => diag.error("kumod::lua", `spawn_task "${name}": ${err}`));
    }) as Fn,
    make_message: ((sender: unknown, recipient: unknown, body: unknown) =>
      new Message({
        sender: addressOf(sender, "sender"),
        recipients: [addressOf(recipient, "recipient")],
        data: bytesArg(body, "body"),
        meta: {},
      })) as Fn,
    "api.admin.bounce.bounce": ((body: unknown) => ({
      id: admin("api.admin.bounce.bounce").bounce(body),
      bounced: {},
      total_bounced: 0,
    })) as Fn,
    "api.admin.bounce.list": (() => admin("api.admin.bounce.list").listBounces()) as Fn,
    "api.admin.bounce.delete":
      ((id: unknown) => admin("api.admin.bounce.delete").cancelBounce(idOf(id))) as Fn,
    "api.admin.suspend.suspend": ((body: unknown) => ({
      id: admin("api.admin.suspend.suspend").suspend(body),
    })) as Fn,
    "api.admin.suspend.list": (() => admin("api.admin.suspend.list").listSuspensions()) as Fn,
    "api.admin.suspend.delete":
      ((id: unknown) => admin("api.admin.suspend.delete").cancelSuspension(idOf(id))) as Fn,
    "api.admin.suspend_ready_q.suspend": ((body: unknown) => ({
      id: admin("api.admin.suspend_ready_q.suspend").suspendReadyQueue(body),
    })) as Fn,
    "api.admin.suspend_ready_q.list":
      (() => admin("api.admin.suspend_ready_q.list").listReadySuspensions()) as Fn,
    "api.admin.suspend_ready_q.delete":
      ((id: unknown) =>
        admin("api.admin.suspend_ready_q.delete").cancelReadySuspension(idOf(id))) as Fn,
  };
  const async: Record<string, AsyncFn> = {
    inject_message: (async (msg: unknown, deferred?: boolean) => {
      if (!(msg instanceof Message)) {
        throw new TypeError("kumo.inject_message: expected a message (kumo.make_message or msg)");
      }
      if (!runtime.inject) throw runtimeUnavailable("inject_message");
      await runtime.inject(msg, Boolean(deferred));
    }) as AsyncFn,
  };
  return { sync, async };
}
