/**
 * ServerConfig: what the policy's `init` asked the server to run.
 *
 * Place on the path: policy. `kumo.start_esmtp_listener`, `define_spool`,
 * `configure_local_logs`... only validate their table and record the typed
 * result here (and refuse to run outside `init`); main.ts reads it after
 * `init` and starts the stages. Under `--validate` nothing is started, so
 * validation has no side effects.
 *
 * @module
 */

/** Init-time configuration recorded from the policy. */
export interface ServerConfig {
  esmtpListeners: unknown[];
  httpListeners: unknown[];
  spools: Map<string, unknown>;
  localLogs: unknown[];
  logHooks: unknown[];
  resolver?: unknown;
  namedResolvers: Map<string, unknown>;
  accountingDbPath?: string;
  suspendWhenSpoolUnhealthy: boolean;
  configMonitorGlobs: string[];
}

/** An empty ServerConfig. */
export function newServerConfig(): ServerConfig {
  return {
    esmtpListeners: [],
    httpListeners: [],
    spools: new Map(),
    localLogs: [],
    logHooks: [],
    namedResolvers: new Map(),
    suspendWhenSpoolUnhealthy: true,
    configMonitorGlobs: ["/opt/kumomta/etc/**/*.{lua,json,toml,yaml}"],
  };
}
