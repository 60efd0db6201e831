/**
 * PolicyRuntime: the late-bound services that some `kumo.*` functions need
 * once the server runs — `kumo.inject_message` (spool + queue),
 * `kumo.api.admin.*` (admin bounce and suspensions) and the spools behind
 * `msg:save()` / `msg:shrink()`.
 *
 * Place on the path: policy. main.ts makes one empty runtime, hands it to
 * the catalogue (the Lua side) and to startServer, which fills it when the
 * queue stage exists (src/queue/policy_runtime.ts) and clears it at
 * shutdown. Until then (`--validate`, `init`) the functions raise
 * {@link runtimeUnavailable}. The policy stage never imports the queue
 * stage: request bodies are parsed on the queue side.
 *
 * @module
 */

import type { Message } from "../message/message.ts";
import type { SpoolPair } from "../spool/spool.ts";

/** Admin levers as plain functions (bodies are the Lua tables, http-api §6). */
export interface PolicyAdmin {
  bounce(body: unknown): string;
  listBounces(): unknown[];
  cancelBounce(id: string): boolean;
  suspend(body: unknown): string;
  listSuspensions(): unknown[];
  cancelSuspension(id: string): boolean;
  suspendReadyQueue(body: unknown): string;
  listReadySuspensions(): unknown[];
  cancelReadySuspension(id: string): boolean;
}

/**
 * Services bound by the running server.
 *
 * @example
 * ```ts
 * const runtime: PolicyRuntime = {};
 * buildCatalogue(() => engine, cfg, resolver, runtime);
 * await startServer(engine, cfg, resolver, undefined, runtime);
 * ```
 */
export interface PolicyRuntime {
  /** Spool `msg` durably (unless `deferredSpool`) and insert it into its queue. */
  inject?: (msg: Message, deferredSpool: boolean) => Promise<void>;
  admin?: PolicyAdmin;
  /** The open data and meta spools (`msg:save()`, `msg:shrink_data()`, reloading shrunk data). */
  spools?: SpoolPair;
}

/** The error raised when a runtime service is used before the server runs. */
export function runtimeUnavailable(fn: string): Error {
  return new Error(
    `Cannot call kumo.${fn}: the queue manager is not running (not available under --validate or during init)`,
  );
}
