/**
 * main: the one place that wires the stages together.
 *
 * Start-up order follows cli.md §2: flags → privileges → diagnostics →
 * policy load (exit 1 naming file and line) → signals → pre_init/init →
 * spools open and enumerate → `initialization complete`. Shutdown (SIGTERM,
 * SIGINT, SIGHUP) stops listeners, flushes queues to the spool, closes logs
 * and spools, and exits 0.
 *
 * @module
 */

import { parseCli, USAGE, UsageError } from "./cli.ts";
import { VERSION } from "./version.ts";
import { diag } from "./log/diag.ts";
import { PolicyEngine } from "./policy/engine.ts";
import { PolicyError } from "./policy/policy_error.ts";
import { buildCatalogue } from "./policy/catalogue.ts";
import { newServerConfig } from "./policy/server_config.ts";
import { startConfigMonitor } from "./policy/config_monitor.ts";
import { startServer } from "./server.ts";
import { checkUser } from "./util/user.ts";
import { Resolver } from "./dns/resolver.ts";
import { kcliMain } from "./kcli/mod.ts";
import type { PolicyRuntime } from "./policy/runtime.ts";

/** Runs the program; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === "kcli") return await kcliMain(argv.slice(1));
  let opts;
  try {
    opts = parseCli(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    throw e;
  }
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  if (opts.version) {
    console.log(`kumo ${VERSION}`);
    return 0;
  }
  if (opts.dumpOpenapiSpec || opts.dumpLruttlCaches || opts.dumpMetricMetadata) {
    const { dumpInfo } = await import("./dump_info.ts");
    console.log(JSON.stringify(dumpInfo(opts), null, 2));
    return 0;
  }

  try {
    checkUser(opts.user);
  } catch (e) {
    console.error(`Error: ${(e as Error).message}`);
    return 1;
  }

  const quiet = opts.validate || opts.script;
  try {
    diag.setFilter(Deno.env.get("KUMOD_LOG") ?? (quiet ? "error" : "info"));
  } catch (e) {
    console.error(`Error: ${(e as Error).message}`);
    return 1;
  }
  diag.setFormat(opts.diagFormat);
  if (opts.diagLogDir) {
    const { hourlyFileWriter } = await import("./log/diag_files.ts");
    diag.setWriter(hourlyFileWriter(opts.diagLogDir));
  }
  if (opts.user === undefined && Deno.uid() === 0) {
    // kumod refuses to start as root without --user; kumo-edge cannot drop
    // privileges, so it runs as root and says so (README: --user).
    diag.warn(
      "kumod",
      "running as root without --user: kumo-edge cannot drop privileges; " +
        "start it as an unprivileged account (e.g. systemd User=) and pass --user NAME",
    );
  }

  const serverConfig = newServerConfig();
  const resolver = new Resolver();
  const runtime: PolicyRuntime = {}; // bound by startServer once the queues run
  let engine: PolicyEngine;
  try {
    engine = await PolicyEngine.load({
      policyPath: opts.policy,
      validating: opts.validate,
      version: VERSION,
      catalogue: buildCatalogue(() => engine, serverConfig, resolver, runtime),
    });
  } catch (e) {
    diag.flush();
    console.error(`Error: ${(e as Error).message}`);
    return 1;
  }

  if (opts.script) {
    try {
      await engine.callOrThrow("main", "", opts.scriptArgs);
      return 0;
    } catch (e) {
      console.error(`Error: ${(e as Error).message}`);
      return 1;
    } finally {
      engine.close();
    }
  }

  // Signals: all three mean graceful shutdown.
  let resolveStop!: (sig: string) => void;
  const stopped = new Promise<string>((r) => (resolveStop = r));
  const signals: Deno.Signal[] = ["SIGTERM", "SIGINT", "SIGHUP"];
  const onSignal = (sig: string) => () => resolveStop(sig);
  const handlers = signals.map((s) => [s, onSignal(s)] as const);
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  const removeSignals = () => {
    for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  };

  try {
    await engine.runInit();
  } catch (e) {
    const cause = e instanceof PolicyError ? e.message : (e as Error).message ?? String(e);
    if (opts.validate) {
      removeSignals();
      engine.close();
      diag.flush();
      console.error(`Error: ${cause}`);
      return 1;
    }
    diag.error("kumod", `problem initializing: ${cause}`);
    diag.info("kumod", "initialization complete");
    removeSignals();
    engine.close();
    diag.flush();
    console.error(`Error: Initialization raised an error: ${cause}`);
    return 1;
  }

  if (opts.validate) {
    removeSignals();
    engine.close();
    diag.flush();
    if (engine.validationFailed) {
      console.error("Error: Validation failed");
      return 1;
    }
    return 0;
  }

  let server;
  try {
    server = await startServer(engine, serverConfig, resolver, undefined, runtime);
  } catch (e) {
    const cause = (e as Error).message ?? String(e);
    diag.error("kumod", `problem initializing: ${cause}`);
    diag.info("kumod", "initialization complete");
    removeSignals();
    engine.close();
    diag.flush();
    console.error(`Error: Initialization raised an error: ${cause}`);
    return 1;
  }
  const stopMonitor = startConfigMonitor(
    () => [
      ...serverConfig.configMonitorGlobs,
      `${engine.policyDir}/*.{lua,json,toml,yaml}`,
    ],
    () => engine.bumpEpoch(),
  );
  diag.info("kumod", "initialization complete");

  const sig = await stopped;
  stopMonitor();
  diag.info("kumod", `${sig} received: shutting down`);
  await server.shutdown();
  removeSignals();
  engine.close();
  diag.info("kumod", "shutdown complete");
  diag.flush();
  return 0;
}
