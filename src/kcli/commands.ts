/**
 * The kcli subcommands (cli.md §4): each reads its flags, makes one or a
 * few calls to the admin HTTP API and prints what upstream's kcli prints —
 * ids, pretty JSON, server text or `OK`, and readable tables.
 *
 * Place: the admin client, outside the mail's path. Talks only HTTP.
 *
 * @module
 */

import type { ApiClient } from "./api_client.ts";
import { type Flags, KcliUsageError, one, parseFlags, required } from "./flags.ts";
import { renderTable } from "./table.ts";
import { queueSummary } from "./queue_summary.ts";

/** One subcommand: resolves to the exit code. */
export type Command = (api: ApiClient, args: string[]) => Promise<number>;

const CRITERIA = ["domain", "routing-domain", "campaign", "tenant"] as const;

function pretty(v: unknown): void {
  console.log(JSON.stringify(v, null, 2));
}

/** Criteria flags → request fields, with kcli's exclusions. */
function criteria(f: Flags, withRouting: boolean, withQueues: boolean): Record<string, unknown> {
  const names = withRouting ? CRITERIA : CRITERIA.filter((c) => c !== "routing-domain");
  const set = names.filter((n) => f.values.has(n));
  const queues = withQueues ? f.values.get("queue") ?? [] : [];
  const everything = f.bools.has("everything");
  if (everything && (set.length > 0 || queues.length > 0)) {
    throw new KcliUsageError("the argument '--everything' cannot be used with other criteria");
  }
  if (queues.length > 0 && set.length > 0) {
    throw new KcliUsageError(`the argument '--queue' cannot be used with '--${set[0]}'`);
  }
  if (!everything && set.length === 0 && queues.length === 0) {
    const list = [...names, ...(withQueues ? ["queue"] : []), "everything"];
    throw new KcliUsageError(
      `the following required arguments were not provided: one of ${
        list.map((n) => `--${n}`).join(", ")
      }`,
    );
  }
  const body: Record<string, unknown> = {};
  for (const n of names) {
    const v = one(f, n);
    if (v !== undefined) body[n.replace("-", "_")] = v;
  }
  if (queues.length > 0) body.queue_names = queues;
  return body;
}

const bounce: Command = async (api, args) => {
  const f = parseFlags(args, {
    values: ["reason", "duration", "queue", ...CRITERIA],
    repeat: ["queue"],
    bools: ["everything", "suppress-logging"],
  });
  const body = { ...criteria(f, true, true), reason: required(f, "reason") } as Record<
    string,
    unknown
  >;
  const d = one(f, "duration");
  if (d !== undefined) body.duration = d;
  if (f.bools.has("suppress-logging")) body.suppress_logging = true;
  const res = await api.json<{ id: string }>("POST", "/api/admin/bounce/v1", body);
  console.log(res.id);
  console.error(
    "NOTE: the bounce is processed asynchronously; use `kcli bounce-list` to review its status",
  );
  return 0;
};

function cell(v: unknown): string {
  return v === null || v === undefined ? "" : String(v);
}

/** How a `*-list` command shows the rules it fetched. */
interface ListView {
  /** The line printed when there are none. */
  empty: string;
  /** Table column titles. */
  headers: string[];
  /** One table row per rule, in `headers` order. */
  row: (item: Record<string, unknown>) => unknown[];
}

/** A `*-list` command: GET `path`; `--json` prints it as JSON, else a table (or `view.empty`). */
function listCommand(path: string, view: ListView): Command {
  return async (api, args) => {
    const f = parseFlags(args, { bools: ["json"] });
    const list = await api.json<Record<string, unknown>[]>("GET", path);
    if (f.bools.has("json")) {
      pretty(list);
      return 0;
    }
    if (list.length === 0) {
      console.log(view.empty);
      return 0;
    }
    console.log(renderTable(view.headers, list.map((x) => view.row(x).map(cell))).trimEnd());
    return 0;
  };
}

const bounceList = listCommand("/api/admin/bounce/v1", {
  empty: "No active bounce rules",
  headers: [
    "ID",
    "CAMPAIGN",
    "TENANT",
    "DOMAIN",
    "ROUTING_DOMAIN",
    "REMAINING",
    "BOUNCED",
    "REASON",
  ],
  row: (b) => [
    b.id,
    b.campaign,
    b.tenant,
    b.domain,
    b.routing_domain,
    b.duration,
    b.total_bounced,
    b.reason,
  ],
});

function cancel(path: string): Command {
  return async (api, args) => {
    const f = parseFlags(args, { values: ["id"] });
    const text = await api.text("DELETE", path, { id: required(f, "id") });
    console.log(text === "" ? "OK" : text);
    return 0;
  };
}

const suspend: Command = async (api, args) => {
  const f = parseFlags(args, {
    values: ["reason", "duration", "queue", "domain", "campaign", "tenant"],
    repeat: ["queue"],
    bools: ["everything"],
  });
  const body = {
    ...criteria(f, false, true),
    reason: required(f, "reason"),
    duration: one(f, "duration") ?? "5m",
  };
  pretty(await api.json("POST", "/api/admin/suspend/v1", body));
  return 0;
};

const suspendList: Command = async (api, args) => {
  parseFlags(args, {});
  pretty(await api.json("GET", "/api/admin/suspend/v1"));
  return 0;
};

const suspendReadyQ: Command = async (api, args) => {
  const f = parseFlags(args, { values: ["name", "reason", "duration"] });
  const body = {
    name: required(f, "name"),
    reason: required(f, "reason"),
    duration: one(f, "duration") ?? "5m",
  };
  pretty(await api.json("POST", "/api/admin/suspend-ready-q/v1", body));
  return 0;
};

const suspendReadyQList = listCommand("/api/admin/suspend-ready-q/v1", {
  empty: "No suspended ready queues",
  headers: ["ID", "NAME", "REMAINING", "REASON"],
  row: (s) => [s.id, s.name, s.duration, s.reason],
});

const rebind: Command = async (api, args) => {
  const f = parseFlags(args, {
    values: ["reason", "data", "set", ...CRITERIA],
    repeat: ["set"],
    bools: ["everything", "always-flush", "suppress-logging", "trigger-rebind-event"],
  });
  const reason = required(f, "reason");
  const body: Record<string, unknown> = { ...criteria(f, true, false), reason };
  let data: Record<string, unknown> = {};
  const raw = one(f, "data");
  if (raw !== undefined) {
    try {
      data = JSON.parse(raw);
    } catch (e) {
      throw new KcliUsageError(`invalid value '${raw}' for '--data': ${(e as Error).message}`);
    }
    if (typeof data !== "object" || data === null || Array.isArray(data)) {
      throw new KcliUsageError(`invalid value '${raw}' for '--data': expected a JSON object`);
    }
  }
  for (const kv of f.values.get("set") ?? []) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new KcliUsageError(`invalid value '${kv}' for '--set': expected KEY=VALUE`);
    data[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  body.data = data;
  if (f.bools.has("always-flush")) body.always_flush = true;
  if (f.bools.has("suppress-logging")) body.suppress_logging = true;
  if (f.bools.has("trigger-rebind-event")) body.trigger_rebind_event = true;
  await api.json("POST", "/api/admin/rebind/v1", body);
  console.error(
    "NOTE: the rebind is processed asynchronously; messages move as their queues are visited",
  );
  return 0;
};

const inspectMessage: Command = async (api, args) => {
  const f = parseFlags(args, { bools: ["want-body"], positionals: ["id"] });
  const query = { id: f.positionals[0], want_body: f.bools.has("want-body") ? "true" : undefined };
  pretty(await api.json("GET", "/api/admin/inspect-message/v1", null, query));
  return 0;
};

const inspectSchedQ: Command = async (api, args) => {
  const f = parseFlags(args, {
    values: ["limit"],
    bools: ["want-body", "no-limit"],
    positionals: ["queue_name"],
  });
  const limit = one(f, "limit") ?? "5";
  if (!/^\d+$/.test(limit)) {
    throw new KcliUsageError(`invalid value '${limit}' for '--limit <LIMIT>': invalid digit`);
  }
  const query = {
    queue_name: f.positionals[0],
    want_body: f.bools.has("want-body") ? "true" : undefined,
    limit: f.bools.has("no-limit") ? undefined : limit,
  };
  pretty(await api.json("GET", "/api/admin/inspect-sched-q/v1", null, query));
  return 0;
};

const setLogFilter: Command = async (api, args) => {
  const f = parseFlags(args, { positionals: ["filter"] });
  const text = await api.text("POST", "/api/admin/set_diagnostic_log_filter/v1", {
    filter: f.positionals[0],
  });
  console.log(text === "" ? "OK" : text);
  return 0;
};

/** Every subcommand by name. */
export const COMMANDS: Record<string, Command> = {
  "bounce": bounce,
  "bounce-list": bounceList,
  "bounce-cancel": cancel("/api/admin/bounce/v1"),
  "suspend": suspend,
  "suspend-list": suspendList,
  "suspend-cancel": cancel("/api/admin/suspend/v1"),
  "suspend-ready-q": suspendReadyQ,
  "suspend-ready-q-list": suspendReadyQList,
  "suspend-ready-q-cancel": cancel("/api/admin/suspend-ready-q/v1"),
  "rebind": rebind,
  "inspect-message": inspectMessage,
  "inspect-sched-q": inspectSchedQ,
  "queue-summary": queueSummary,
  "set-log-filter": setLogFilter,
};
