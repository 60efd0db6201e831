/**
 * The `kumo` command line: kumod's flags (cli.md §1), parsed strictly.
 *
 * Place on the path: the program's front door, used only by main.ts.
 * A usage error is reported as {@linkcode UsageError}; main.ts prints it
 * with the usage text and exits 2 (clap's convention).
 *
 * @module
 */

import { parseArgs } from "node:util";

/** Parsed command line. */
export interface CliOptions {
  policy: string;
  validate: boolean;
  script: boolean;
  scriptArgs: string[];
  diagLogDir?: string;
  diagFormat: "full" | "compact" | "pretty" | "json";
  user?: string;
  dumpOpenapiSpec: boolean;
  dumpLruttlCaches: boolean;
  dumpMetricMetadata: boolean;
  help: boolean;
  version: boolean;
}

/** A command-line usage error (exit code 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Default policy location, as upstream. */
export const DEFAULT_POLICY = "/opt/kumomta/etc/policy/init.lua";

/** The usage text for `--help` and usage errors. */
export const USAGE = `kumo: a KumoMTA-compatible edge MTA

Usage: kumo [OPTIONS] [-- <SCRIPT_ARGS>...]
       kumo kcli [--endpoint URL] <SUBCOMMAND> [OPTIONS]

Options:
      --policy <PATH>          Lua policy file to load
                               [default: ${DEFAULT_POLICY}]
      --validate               Load the policy, run pre_init, init and
                               validate_config without starting anything;
                               exit 0 if valid, 1 otherwise
      --script                 Do not start the server: run the policy's
                               'main' event with the SCRIPT_ARGS and exit
      --script-args <ARG>      Legacy form of SCRIPT_ARGS (repeatable)
      --diag-log-dir <DIR>     Write diagnostic logs to hourly files in DIR
      --diag-format <FORMAT>   full | compact | pretty | json [default: full]
      --user <NAME>            The account kumo runs as: must be the
                               current user (kumo-edge cannot switch users,
                               so as root only root is accepted)
      --dump-openapi-spec      Print the HTTP API's OpenAPI JSON and exit
      --dump-lruttl-caches     Print the cache definitions (JSON) and exit
      --dump-metric-metadata   Print the metric catalogue (JSON) and exit
  -h, --help                   Print help
  -V, --version                Print version

Environment:
  KUMOD_LOG                    Diagnostic filter, e.g. "kumod=debug,info"
  KUMO_AVAILABLE_PARALLELISM   CPU count kumo.available_parallelism() reports
`;

/** Parses argv (without the program name). @throws {UsageError} */
export function parseCli(argv: string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        policy: { type: "string" },
        validate: { type: "boolean" },
        script: { type: "boolean" },
        "script-args": { type: "string", multiple: true },
        "diag-log-dir": { type: "string" },
        "diag-format": { type: "string" },
        user: { type: "string" },
        "dump-openapi-spec": { type: "boolean" },
        "dump-lruttl-caches": { type: "boolean" },
        "dump-metric-metadata": { type: "boolean" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = parsed.values;
  const dashDash = argv.indexOf("--");
  const positionals = parsed.positionals;
  if (dashDash < 0 && positionals.length > 0) {
    throw new UsageError(`unexpected argument "${positionals[0]}" found`);
  }
  const format = v["diag-format"] ?? "full";
  if (!["full", "compact", "pretty", "json"].includes(format)) {
    throw new UsageError(
      `invalid value "${format}" for --diag-format: expected full, compact, pretty or json`,
    );
  }
  if (v.policy === "") throw new UsageError("a value is required for --policy");
  return {
    policy: v.policy ?? DEFAULT_POLICY,
    validate: v.validate ?? false,
    script: v.script ?? false,
    scriptArgs: [...(v["script-args"] ?? []), ...positionals],
    diagLogDir: v["diag-log-dir"],
    diagFormat: format as CliOptions["diagFormat"],
    user: v.user,
    dumpOpenapiSpec: v["dump-openapi-spec"] ?? false,
    dumpLruttlCaches: v["dump-lruttl-caches"] ?? false,
    dumpMetricMetadata: v["dump-metric-metadata"] ?? false,
    help: v.help ?? false,
    version: v.version ?? false,
  };
}
