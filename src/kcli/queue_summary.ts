/**
 * `kcli queue-summary` (cli.md §4): ready queues with delivered /
 * transient-failure / connection / queued counts from `/metrics`, notes on
 * suspensions, bounces and ready-queue states, then the scheduled queues.
 * The output format is explicitly unstable upstream; this is a readable
 * approximation.
 *
 * `--domain D` resolves D's MX records locally, like upstream, with the
 * server's own MX code (`src/dns/`), and keeps the ready queues of D's site
 * name and the scheduled queues whose domain is D. The system resolver is
 * used unless `--name-server IP:PORT` (repeatable; env
 * `KUMO_KCLI_NAME_SERVERS`, comma-separated) names others — a kumo-edge
 * addition. When the lookup fails the note says so on stderr and the
 * filter falls back to D as a substring of the site / queue name.
 *
 * Place: the admin client, outside the mail's path. Talks HTTP, and DNS
 * for `--domain`.
 *
 * @module
 */

import type { ApiClient } from "./api_client.ts";
import { KcliUsageError, one, parseFlags } from "./flags.ts";
import { renderTable } from "./table.ts";
import { type NameServer, Resolver } from "../dns/resolver.ts";
import { resolveMailExchanger } from "../dns/mail_exchanger.ts";
import { parseQueueName } from "../message/queue_name.ts";

/** `IP:PORT` or `[v6]:PORT` (port 53 when omitted). */
function parseNameServer(text: string): NameServer {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text) ??
    /^([0-9a-fA-F:]+)()$/.exec(text);
  const port = m?.[2] ? Number(m[2]) : 53;
  if (!m || port < 1 || port > 65535) {
    throw new KcliUsageError(`invalid value '${text}' for '--name-server <IP:PORT>'`);
  }
  return { ip: m[1], port };
}

/**
 * The site name of `domain` (as the server computes it for ready queue
 * names), or an Error when its MX cannot be resolved.
 */
async function siteOf(domain: string, servers: NameServer[]): Promise<string | Error> {
  try {
    const mx = await resolveMailExchanger(domain, new Resolver({ nameServers: servers }));
    return mx.siteName;
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

/** One metric sample. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parse Prometheus text exposition (comments skipped).
 *
 * @example
 * ```ts
 * parsePrometheus('ready_count{service="smtp_client:a->b@smtp_client"} 3\n');
 * ```
 */
export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    for (let l = re.exec(m[2] ?? ""); l; l = re.exec(m[2] ?? "")) {
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    }
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

interface ReadyRow {
  source: string;
  site: string;
  proto: string;
  d: number;
  t: number;
  c: number;
  q: number;
}

/** The `queue-summary` subcommand. */
export async function queueSummary(api: ApiClient, args: string[]): Promise<number> {
  const f = parseFlags(args, {
    values: ["limit", "domain", "name-server"],
    repeat: ["name-server"],
    bools: ["by-volume"],
  });
  const limitText = one(f, "limit");
  if (limitText !== undefined && !/^\d+$/.test(limitText)) {
    throw new KcliUsageError(`invalid value '${limitText}' for '--limit <LIMIT>': invalid digit`);
  }
  const limit = limitText === undefined ? Infinity : Number(limitText);
  const domain = one(f, "domain")?.toLowerCase();
  const serverTexts = f.values.get("name-server") ??
    (Deno.env.get("KUMO_KCLI_NAME_SERVERS") ?? "").split(",").map((s) => s.trim()).filter((s) =>
      s !== ""
    );
  const servers = serverTexts.map(parseNameServer);
  let site: string | null = null;
  if (domain) {
    const r = await siteOf(domain, servers);
    if (r instanceof Error) {
      console.error(`Cannot resolve MX of "${domain}": ${r.message}; filtering by name instead`);
    } else site = r;
  }
  const [metrics, suspends, bounces, readySuspends, states] = await Promise.all([
    api.text("GET", "/metrics"),
    api.json<Record<string, unknown>[]>("GET", "/api/admin/suspend/v1"),
    api.json<Record<string, unknown>[]>("GET", "/api/admin/bounce/v1"),
    api.json<Record<string, unknown>[]>("GET", "/api/admin/suspend-ready-q/v1"),
    api.json<{ states_by_ready_queue: Record<string, Record<string, { context: string }>> }>(
      "GET",
      "/api/admin/ready-q-states/v1",
    ),
  ]);
  const rows = new Map<string, ReadyRow>();
  const sched = new Map<string, number>();
  for (const s of parsePrometheus(metrics)) {
    if (s.name === "scheduled_count" && s.labels.queue !== undefined) {
      sched.set(s.labels.queue, s.value);
      continue;
    }
    const field = {
      total_messages_delivered: "d",
      total_messages_transfail: "t",
      connection_count: "c",
      ready_count: "q",
    }[s.name] as keyof ReadyRow | undefined;
    const service = s.labels.service;
    if (!field || !service || !service.includes("->")) continue;
    const colon = service.indexOf(":");
    const proto = service.slice(0, colon);
    const rq = service.slice(colon + 1);
    let row = rows.get(rq);
    if (!row) {
      const arrow = rq.indexOf("->");
      const site = rq.slice(arrow + 2).replace(/@[^@]*$/, "");
      row = { source: rq.slice(0, arrow), site, proto, d: 0, t: 0, c: 0, q: 0 };
      rows.set(rq, row);
    }
    (row[field] as number) = s.value;
  }
  let ready = [...rows.entries()];
  if (site !== null) ready = ready.filter(([, r]) => r.site === site);
  else if (domain) ready = ready.filter(([, r]) => r.site.toLowerCase().includes(domain));
  ready.sort((a, b) =>
    f.bools.has("by-volume")
      ? b[1].q - a[1].q || a[0].localeCompare(b[0])
      : a[0].localeCompare(b[0])
  );
  ready = ready.slice(0, limit);
  console.log(
    renderTable(
      ["SITE", "SOURCE", "PROTO", "D", "T", "C", "Q"],
      ready.map(([, r]) => [r.site, r.source, r.proto, `${r.d}`, `${r.t}`, `${r.c}`, `${r.q}`]),
    ).trimEnd(),
  );
  const notes: string[] = [];
  for (const s of readySuspends) {
    notes.push(`ready queue ${s.name} is suspended for ${s.duration}: ${s.reason}`);
  }
  for (const [rq, st] of Object.entries(states.states_by_ready_queue ?? {})) {
    for (const [k, v] of Object.entries(st)) notes.push(`${rq}: ${k}: ${v.context}`);
  }
  for (const s of suspends) {
    notes.push(`suspended ${describe(s)} for ${s.duration}: ${s.reason}`);
  }
  for (const b of bounces) {
    notes.push(
      `bouncing ${describe(b)} for ${b.duration}: ${b.reason} (${b.total_bounced} bounced)`,
    );
  }
  if (notes.length > 0) console.log("\n" + notes.join("\n"));
  let schedRows = [...sched.entries()].filter(([n]) =>
    !domain ||
    (site !== null
      ? parseQueueName(n).domain.toLowerCase() === domain
      : n.toLowerCase().includes(domain))
  );
  schedRows.sort((a, b) =>
    f.bools.has("by-volume") ? b[1] - a[1] || a[0].localeCompare(b[0]) : a[0].localeCompare(b[0])
  );
  schedRows = schedRows.slice(0, limit);
  console.log(
    "\n" + renderTable(["SCHEDULED QUEUE", "COUNT"], schedRows.map(([n, c]) => [n, `${c}`]))
      .trimEnd(),
  );
  return 0;
}

function describe(r: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const k of ["campaign", "tenant", "domain", "routing_domain"]) {
    if (typeof r[k] === "string") parts.push(`${k}=${r[k]}`);
  }
  return parts.length > 0 ? parts.join(" ") : "everything";
}
