/**
 * `kumo kcli …`: a kcli-compatible admin client (cli.md §4).
 *
 * `kumo kcli [--endpoint URL] <SUBCOMMAND> [OPTIONS]`; the endpoint comes
 * from `--endpoint`, else `KUMO_KCLI_ENDPOINT`, else
 * `http://127.0.0.1:8000`. Exit codes: 0 success, 1 a failed request
 * (`Error: request status …`), 2 a usage error.
 *
 * Place: beside the server, never on the mail's path; it only talks to a
 * running kumo over its HTTP API.
 *
 * @module
 */

import { ApiClient, ApiError, resolveEndpoint } from "./api_client.ts";
import { COMMANDS } from "./commands.ts";
import { KcliUsageError } from "./flags.ts";

/** Usage text of `kumo kcli`. */
export const KCLI_USAGE = `Usage: kumo kcli [--endpoint <URL>] <SUBCOMMAND> [OPTIONS]

Options:
      --endpoint <URL>  kumod HTTP endpoint [env: KUMO_KCLI_ENDPOINT]
                        [default: http://127.0.0.1:8000]

Subcommands:
  queue-summary           Ready and scheduled queues with counts and notes
                          (--limit N, --by-volume, --domain D [--name-server IP:PORT])
  bounce                  Bounce queued messages (--reason, criteria or --everything)
  bounce-list             List active admin bounces (--json)
  bounce-cancel           Cancel an admin bounce (--id)
  suspend                 Suspend scheduled queues (--reason, criteria or --everything)
  suspend-list            List scheduled-queue suspensions
  suspend-cancel          Cancel a suspension (--id)
  suspend-ready-q         Suspend a ready queue (--name, --reason)
  suspend-ready-q-list    List ready-queue suspensions (--json)
  suspend-ready-q-cancel  Cancel a ready-queue suspension (--id)
  rebind                  Rebind messages (--reason, --data/--set, criteria)
  inspect-message         Show a spooled message (<ID>, --want-body)
  inspect-sched-q         Show a scheduled queue (<QUEUE_NAME>, --limit, --no-limit, --want-body)
  set-log-filter          Change the diagnostic log filter (<FILTER>)`;

/**
 * Run kcli with `argv` (the arguments after `kcli`); resolves to the exit code.
 *
 * @example
 * ```ts
 * const code = await kcliMain(["--endpoint", "http://127.0.0.1:8000", "bounce-list"]);
 * ```
 */
export async function kcliMain(argv: string[]): Promise<number> {
  let endpoint: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--endpoint") {
      if (i + 1 >= argv.length) return usage("a value is required for '--endpoint <URL>'");
      endpoint = argv[++i];
    } else if (a.startsWith("--endpoint=")) endpoint = a.slice("--endpoint=".length);
    else rest.push(a);
  }
  const [name, ...args] = rest;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    if (name === undefined) return usage("a subcommand is required");
    console.log(KCLI_USAGE);
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) return usage(`unrecognized subcommand '${name}'`);
  const url = resolveEndpoint(endpoint);
  try {
    new URL(url);
  } catch {
    return usage(`invalid value '${url}' for '--endpoint <URL>': relative URL without a base`);
  }
  try {
    return await cmd(new ApiClient(url), args);
  } catch (e) {
    if (e instanceof KcliUsageError) return usage(e.message);
    if (e instanceof ApiError) {
      console.error(`Error: ${e.message}`);
      return 1;
    }
    console.error(`Error: ${(e as Error).message ?? e}`);
    return 1;
  }
}

function usage(message: string): number {
  console.error(`error: ${message}\n\n${KCLI_USAGE}`);
  return 2;
}
