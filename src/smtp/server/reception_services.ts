/**
 * ReceptionServices: what every SMTP session borrows from the running server
 * — policy engine, spools (absent until opened), log dispatcher, the queue
 * hand-off, the node id and the shutdown flag.
 *
 * Place on the mail's path: built once by `src/server.ts`, shared by every
 * listener and session. Plain mutable data: `spools` is filled in when the
 * spools finish opening, `shuttingDown` is set by shutdown. It never does
 * I/O itself.
 *
 * @module
 */

import type { PolicyEngine } from "../../policy/engine.ts";
import type { SpoolPair } from "../../spool/spool.ts";
import type { LogDispatcher } from "../../log/local_logger.ts";
import type { QueueHandoff } from "../../queue/handoff.ts";

/**
 * Shared services of the inbound SMTP stage.
 *
 * @example
 * ```ts
 * const services: ReceptionServices = {
 *   engine, spools: null, logs: new LogDispatcher(), handoff, nodeId, shuttingDown: false,
 * };
 * ```
 */
export interface ReceptionServices {
  engine: PolicyEngine;
  /** The data and meta spools; `null` until both are open (`421 … waiting for spool startup`). */
  spools: SpoolPair | null;
  logs: LogDispatcher;
  handoff: QueueHandoff;
  /** UUID of this node, written into every log record. */
  nodeId: string;
  /** Set when shutdown begins: new connections and idle sessions get `421 4.3.2 … shutting down`. */
  shuttingDown: boolean;
  /** True while a spool's filesystem is below its `min_free_space`/`min_free_inodes` floor. */
  diskTooFull?: () => boolean;
  /** True while the memory headroom is 0 (`src/metrics/memory_limits.ts`): new mail is refused. */
  loadShedding?: () => boolean;
}
