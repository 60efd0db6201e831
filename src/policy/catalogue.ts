/**
 * The catalogue of `kumo.*` functions beyond the engine's own: config
 * constructors, init-time server functions, DNS, and the Message / conn_meta
 * methods.
 *
 * Place on the path: policy. Each binding converts the Lua table with the
 * typed parser of `config/`, then records it in the ServerConfig (init-time
 * functions) or calls the service (DNS). Functions that start something may
 * only run inside `init`: the policy file is re-run for every Lua context,
 * so a listener started at top level would be started again and again.
 *
 * @module
 */

import type { HostCatalogue } from "./host_functions.ts";
import type { PolicyEngine } from "./engine.ts";
import type { ServerConfig } from "./server_config.ts";
import { egressPoolToJSON, parseEgressPool } from "./config/egress_pool.ts";
import { egressSourceToJSON, parseEgressSource } from "./config/egress_source.ts";
import { parseQueueConfig, queueConfigToJSON } from "./config/queue_config.ts";
import { egressPathToJSON, parseEgressPath } from "./config/egress_path.ts";
import { listenerDomainToJSON, parseListenerDomain } from "./config/listener_domain.ts";
import { parseEsmtpListener } from "./config/esmtp_listener.ts";
import { parseHttpListener } from "./config/http_listener.ts";
import { parseSpool } from "./config/spool.ts";
import { parseLocalLogs } from "./config/local_logs.ts";
import { parseLogHook } from "./config/log_hook.ts"; // [loghook]
import { parseDnsResolver } from "./config/dns_resolver.ts";
import { diag } from "../log/diag.ts";
import { evalGlobs } from "./config_monitor.ts";
import { MESSAGE_METHODS, messageAsyncFunctions } from "./message_methods.ts";
import { dkimFunctions } from "./host/dkim.ts";
import { CONN_METHODS } from "./conn_methods.ts";
import { dnsFunctions, resolverPicker } from "./host/dns.ts";
import { SHAPING_SYNC_FUNCTIONS, shapingAsyncFunctions } from "./host/shaping.ts";
import type { Resolver } from "../dns/resolver.ts";
import type { DnsResolverConfig } from "./config/dns_resolver.ts";
import { longTailAsync, longTailSync } from "./host/long_tail.ts";
import { memoryFunctions } from "./host/memory.ts"; // [http] memory thresholds
import type { PolicyRuntime } from "./runtime.ts";
import { STRING_ASYNC_FUNCTIONS } from "./host/strings.ts";
import { dnsSettingsFunctions, testZones } from "./host/dns_settings.ts";

type Fn = (...args: never[]) => unknown;

/** Builds the catalogue; `engine()` returns the engine once it exists. */
export function buildCatalogue(
  engine: () => PolicyEngine | undefined,
  cfg: ServerConfig,
  resolver: Resolver,
  runtime: PolicyRuntime = {},
): HostCatalogue {
  const inInit = (name: string) => {
    const e = engine();
    if (e && e.phase !== "init" && e.phase !== "pre_init") {
      throw new Error(`kumo.${name} may only be called from the init event`);
    }
  };
  const initOnly = <T>(name: string, parse: (x: unknown) => T, record: (v: T) => void): Fn =>
    ((input: unknown) => {
      inInit(name);
      record(parse(input));
    }) as Fn;

  const syncFunctions: Record<string, Fn> = {
    start_esmtp_listener: initOnly(
      "start_esmtp_listener",
      parseEsmtpListener,
      (v) => cfg.esmtpListeners.push(v),
    ),
    start_http_listener: initOnly(
      "start_http_listener",
      parseHttpListener,
      (v) => cfg.httpListeners.push(v),
    ),
    define_spool: initOnly("define_spool", parseSpool, (v) => {
      const name = (v as { name: string }).name;
      if (cfg.spools.has(name)) throw new Error(`spool "${name}" is already defined`);
      cfg.spools.set(name, v);
    }),
    configure_local_logs: initOnly(
      "configure_local_logs",
      parseLocalLogs,
      (v) => cfg.localLogs.push(v),
    ),
    // [loghook] validated here (name required and unique); the raw table is kept, server.ts converts it.
    configure_log_hook: initOnly("configure_log_hook", (x) => {
      const name = parseLogHook(x).name;
      if (cfg.logHooks.some((h) => (h as { name?: unknown }).name === name)) {
        throw new Error(`log hook "${name}" is already defined`);
      }
      return x;
    }, (v) => cfg.logHooks.push(v)),
    // Accepted, validated and recorded; kumo-edge keeps no accounting database
    // and does not suspend delivery on spool health (README, "The policy").
    configure_accounting_db_path: ((path: unknown) => {
      if (typeof path !== "string") {
        throw new TypeError(
          `kumo.configure_accounting_db_path: invalid value ${
            String(path ?? "nil")
          }: expected a path string`,
        );
      }
      cfg.accountingDbPath = path;
    }) as Fn,
    suspend_delivery_when_spool_unhealthy: ((b: unknown) => {
      if (typeof b !== "boolean") {
        throw new TypeError(
          `kumo.suspend_delivery_when_spool_unhealthy: invalid value ${
            String(b ?? "nil")
          }: expected a boolean`,
        );
      }
      cfg.suspendWhenSpoolUnhealthy = b;
    }) as Fn,
    set_config_monitor_globs: ((globs: string[]) => {
      cfg.configMonitorGlobs = [...globs];
    }) as Fn,
    // Same set the monitor hashes (src/main.ts): the globs plus the policy file's own directory.
    eval_config_monitor_globs: (() => {
      const dir = engine()?.policyDir;
      const own = dir === undefined ? [] : [`${dir}/*.{lua,json,toml,yaml}`];
      return evalGlobs([...cfg.configMonitorGlobs, ...own]);
    }) as Fn,
    set_diagnostic_log_filter: ((spec: string) => diag.setFilter(String(spec))) as Fn,
    "dns.configure_resolver": ((input: unknown) => {
      const parsed: DnsResolverConfig = parseDnsResolver(input);
      cfg.resolver = parsed;
      // { Test = { zones = ..., servfail = ... } } answers from fixed zones, never the network.
      resolver.configure({
        nameServers: parsed.nameServers,
        staticZones: parsed.test === undefined ? null : testZones(parsed.test),
      });
    }) as Fn,
    ...SHAPING_SYNC_FUNCTIONS,
    ...dnsSettingsFunctions(resolver, { mtaStsEnabled: true }),
    ...dkimFunctions(),
    ...longTailSync(engine, runtime),
    ...memoryFunctions(), // [http] kumo.set_memory_* / get_memory_*
    "dns.define_resolver": ((name: string, input: unknown) => {
      cfg.namedResolvers.set(String(name), parseDnsResolver(input));
    }) as Fn,
  };
  // Thread-pool and memory tuning knobs: accepted and ignored (one event loop).
  for (
    const n of [
      "set_smtpsrv_threads",
      "set_readyq_threads",
      "set_qmaint_threads",
      "set_ready_qmaint_threads",
      "set_spoolin_threads",
      "set_logging_threads",
      "set_httpinject_threads",
      "dkim.set_signing_threads",
      "set_lua_gc_on_put",
      "set_lruttl_cache_capacity",
    ]
  ) syncFunctions[n] = (() => undefined) as Fn;

  return {
    configConstructors: {
      make_egress_source: {
        kind: "EgressSource",
        parse: parseEgressSource,
        view: (v) => egressSourceToJSON(v as ReturnType<typeof parseEgressSource>),
      },
      make_egress_pool: {
        kind: "EgressPool",
        parse: parseEgressPool,
        view: (v) => egressPoolToJSON(v as ReturnType<typeof parseEgressPool>),
      },
      make_queue_config: {
        kind: "QueueConfig",
        parse: parseQueueConfig,
        view: (v) => queueConfigToJSON(v as ReturnType<typeof parseQueueConfig>),
      },
      make_egress_path: {
        kind: "EgressPathConfig",
        parse: parseEgressPath,
        view: (v) => egressPathToJSON(v as ReturnType<typeof parseEgressPath>),
      },
      make_listener_domain: {
        kind: "ListenerDomain",
        parse: parseListenerDomain,
        view: (v) => listenerDomainToJSON(v as ReturnType<typeof parseListenerDomain>),
      },
    },
    syncFunctions,
    asyncFunctions: {
      ...STRING_ASYNC_FUNCTIONS,
      ...dnsFunctions(resolver, cfg.namedResolvers),
      ...shapingAsyncFunctions(engine, resolver),
      ...messageAsyncFunctions(runtime, resolverPicker(resolver, cfg.namedResolvers)),
      ...longTailAsync(engine, runtime),
    },
    messageMethods: MESSAGE_METHODS as HostCatalogue["messageMethods"],
    connMethods: CONN_METHODS as HostCatalogue["connMethods"],
  };
}
