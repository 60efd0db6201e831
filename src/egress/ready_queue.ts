/**
 * Ready queues: one per (egress source, site), named
 * `<source>-><site_name>@smtp_client`, each with its own dispatchers
 * (≤ `connection_limit`), connection/message rate throttles, connection
 * reuse and MX fall-over (queues-and-delivery §2, §4, §5).
 *
 * Place on the path: after the scheduled queue picked a source, before the
 * SMTP client. Messages come in with `enqueue`; every attempt's outcome goes
 * back as a value through `onOutcome` — the ready queue never logs, never
 * re-schedules and never imports the queue stage.
 *
 * @module
 */

import type { PolicyEngine } from "../policy/engine.ts";
import type { Message } from "../message/message.ts";
import type { Resolver } from "../dns/resolver.ts";
import {
  buildConnectionPlan,
  type ConnectionTarget,
  type MailExchanger,
} from "../dns/mail_exchanger.ts";
import { expectConfig } from "../policy/config_object.ts";
import { type EgressPathConfig, parseEgressPath } from "../policy/config/egress_path.ts";
import type { EgressSource } from "../policy/config/egress_source.ts";
import type { PeerAddress, ResponseRecord, SourceAddress } from "../log/record.ts";
import { Throttle } from "../util/gcra.ts";
import {
  classifyReply,
  type ClientResponse,
  ConnectError,
  SmtpClient,
  type SmtpClientPlan,
} from "../smtp/client/smtp_client.ts";

/** What a recipient's attempt came to. */
export type AttemptOutcome = "Delivery" | "TransientFailure" | "Bounce";

/** One recipient's result. */
export interface RecipientResult {
  /** Index into `msg.recipients` at enqueue time. */
  index: number;
  outcome: AttemptOutcome;
  response: ResponseRecord;
}

/** Everything the queue stage needs to log and re-schedule one attempt. */
export interface AttemptReport {
  readyQueue: string;
  egressPool: string;
  egressSource: string;
  results: RecipientResult[];
  peer: PeerAddress | null;
  sourceAddress: SourceAddress | null;
  sessionId?: string;
  tls?: { cipher: string; protocol: string; peerSubject?: string[] };
  providerName?: string;
}

/** Queue-name components passed to `smtp_client_rewrite_delivery_status`. */
export interface QueueComponents {
  domain: string;
  tenant?: string;
  campaign?: string;
  routingDomain?: string;
}

interface Pending {
  msg: Message;
  components: QueueComponents;
}

/** Construction parameters of a {@link ReadyQueue}. */
export interface ReadyQueueInit {
  name: string;
  source: EgressSource;
  poolName: string;
  routingDomain: string;
  mx: MailExchanger;
  engine: PolicyEngine;
  resolver: Resolver;
  onOutcome: (msg: Message, report: AttemptReport) => void;
  hostname?: string;
}

/** Build the ready-queue name. */
export function readyQueueName(source: string, site: string): string {
  return `${source}->${site}@smtp_client`;
}

function internal(code: number, text: string): ResponseRecord {
  const m = /^([245])\.(\d{1,3})\.(\d{1,3}) /.exec(text);
  return {
    code,
    enhanced_code: m ? { class: +m[1], subject: +m[2], detail: +m[3] } : null,
    content: m ? text.slice(m[0].length) : text,
    command: null,
  };
}

function toRecord(r: ClientResponse): ResponseRecord {
  return {
    code: r.code,
    enhanced_code: r.enhanced,
    content: r.text.replace(/\r\n|\r|\n/g, " "),
    command: r.command,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * One (source, site) delivery lane.
 *
 * @example
 * ```ts
 * const rq = new ReadyQueue({ name, source, poolName, routingDomain, mx, engine, resolver, onOutcome });
 * rq.enqueue(msg, { domain: "example.test" });
 * ```
 */
export class ReadyQueue {
  readonly name: string;
  readonly source: EgressSource;
  readonly poolName: string;
  readonly routingDomain: string;
  mx: MailExchanger;
  #init: ReadyQueueInit;
  #pending: Pending[] = [];
  #head = 0;
  #active = 0;
  #idle: ((p: Pending | null) => void)[] = [];
  #path: EgressPathConfig | null = null;
  #pathExpires = 0;
  #connThrottle: Throttle | null = null;
  #msgThrottle: Throttle | null = null;
  #stopping = false;
  #clients = new Set<SmtpClient>();
  #dispatchers = new Set<Promise<void>>();

  constructor(init: ReadyQueueInit) {
    this.#init = init;
    this.name = init.name;
    this.source = init.source;
    this.poolName = init.poolName;
    this.routingDomain = init.routingDomain;
    this.mx = init.mx;
  }

  /** Messages waiting for a dispatcher. */
  get size(): number {
    return this.#pending.length - this.#head;
  }

  /** Dispatchers running. */
  get activeConnections(): number {
    return this.#active;
  }

  /** Ready-queue capacity (`max_ready`), once the path config is known. */
  get maxReady(): number {
    return this.#path?.maxReady ?? 1024;
  }

  /** The path config (refreshed per `refresh_interval`). */
  async pathConfig(): Promise<EgressPathConfig> {
    const now = Date.now();
    if (this.#path && now < this.#pathExpires) return this.#path;
    const { engine } = this.#init;
    let cfg: EgressPathConfig;
    if (engine.hasHandler("get_egress_path_config")) {
      const ret = await engine.callOrThrow("get_egress_path_config", "sss", [
        this.routingDomain,
        this.source.name,
        this.mx.siteName,
      ]);
      cfg = ret == null
        ? parseEgressPath({})
        : expectConfig(ret, "EgressPathConfig", parseEgressPath, "get_egress_path_config");
    } else cfg = parseEgressPath({});
    const old = this.#path;
    this.#path = cfg;
    this.#pathExpires = now + cfg.refreshInterval;
    if (!old || old.maxConnectionRate?.text !== cfg.maxConnectionRate?.text) {
      this.#connThrottle = cfg.maxConnectionRate ? new Throttle(cfg.maxConnectionRate) : null;
    }
    if (!old || old.maxMessageRate?.text !== cfg.maxMessageRate?.text) {
      this.#msgThrottle = cfg.maxMessageRate ? new Throttle(cfg.maxMessageRate) : null;
    }
    return cfg;
  }

  /** Hand a message over; a dispatcher picks it up. */
  enqueue(msg: Message, components: QueueComponents): void {
    const item = { msg, components };
    const idle = this.#idle.shift();
    if (idle) return idle(item);
    this.#pending.push(item);
    this.#maybeSpawn();
  }

  #take(): Pending | undefined {
    if (this.#head >= this.#pending.length) return undefined;
    const item = this.#pending[this.#head];
    this.#pending[this.#head++] = undefined as unknown as Pending;
    if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
      this.#pending = this.#pending.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  #maybeSpawn(): void {
    if (this.#stopping || this.size === 0) return;
    // Until the path config is known, one dispatcher (it loads the config and spawns more).
    const limit = this.#path?.connectionLimit.limit ?? 1;
    if (this.#active >= limit) return;
    this.#active++;
    const p = this.#dispatch().catch(() => {}).finally(() => {
      this.#active--;
      this.#dispatchers.delete(p);
      this.#maybeSpawn();
    });
    this.#dispatchers.add(p);
  }

  /** Wait up to `ms` for a message handed to an idle dispatcher. */
  #waitIdle(ms: number): Promise<Pending | null> {
    if (this.#stopping) return Promise.resolve(null);
    const now = this.#take();
    if (now) return Promise.resolve(now);
    return new Promise((resolve) => {
      const fn = (p: Pending | null) => {
        clearTimeout(timer);
        resolve(p);
      };
      const timer = setTimeout(() => {
        const i = this.#idle.indexOf(fn);
        if (i >= 0) this.#idle.splice(i, 1);
        resolve(null);
      }, ms);
      this.#idle.push(fn);
    });
  }

  #report(item: Pending, results: RecipientResult[], extra: Partial<AttemptReport> = {}): void {
    this.#init.onOutcome(item.msg, {
      readyQueue: this.name,
      egressPool: this.poolName,
      egressSource: this.source.name,
      results,
      peer: null,
      sourceAddress: null,
      providerName: this.#path?.providerName,
      ...extra,
    });
  }

  #failAll(
    item: Pending,
    outcome: AttemptOutcome,
    response: ResponseRecord,
    extra?: Partial<AttemptReport>,
  ) {
    this.#report(
      item,
      item.msg.recipients.map((_, index) => ({ index, outcome, response })),
      extra,
    );
  }

  /** Resolve the usable connection plan or report why there is none. */
  async #plan(
    path: EgressPathConfig,
  ): Promise<ConnectionTarget[] | { outcome: AttemptOutcome; response: ResponseRecord }> {
    const mx = this.mx;
    if (mx.isNullMx) {
      return {
        outcome: "Bounce",
        response: internal(556, "5.1.10 Recipient address has a null MX"),
      };
    }
    const all = await buildConnectionPlan(mx, this.#init.resolver, {
      ipLookupStrategy: path.ipLookupStrategy,
      port: path.smtpPort,
      remotePort: this.source.remotePort,
    });
    for (const t of all) {
      if (path.prohibitedHosts.contains(t.addr)) {
        return {
          outcome: "Bounce",
          response: internal(
            550,
            `5.4.4 ${t.addr} is on the list of prohibited_hosts ${
              JSON.stringify(path.prohibitedHosts.toJSON())
            }`,
          ),
        };
      }
    }
    const plan = all.filter((t) => !path.skipHosts.contains(t.addr));
    if (plan.length === 0) {
      return {
        outcome: "TransientFailure",
        response: internal(451, "4.4.4 MX didn't resolve to any hosts"),
      };
    }
    return plan;
  }

  #clientPlan(path: EgressPathConfig, t: ConnectionTarget): SmtpClientPlan {
    const src = this.source;
    return {
      name: t.name,
      addr: t.addr,
      port: t.port,
      sourceAddress: src.sourceAddress,
      haProxy: src.haProxyServer && src.haProxySourceAddress
        ? { server: src.haProxyServer, sourceAddress: src.haProxySourceAddress }
        : undefined,
      ehloDomain: path.ehloDomain ?? src.ehloDomain ?? this.#init.hostname ?? Deno.hostname(),
      enableTls: path.enableTls,
      enablePipelining: path.enablePipelining,
      enableRset: path.enableRset,
      ignore8bit: path.ignore8bitChecks,
      timeouts: {
        connect: path.connectTimeout,
        banner: path.bannerTimeout,
        ehlo: path.ehloTimeout,
        starttls: path.starttlsTimeout,
        mailFrom: path.mailFromTimeout,
        rcptTo: path.rcptToTimeout,
        data: path.dataTimeout,
        dataDot: path.dataDotTimeout,
        rset: path.rsetTimeout,
        idle: path.idleTimeout,
      },
    };
  }

  async #rewrite(item: Pending, r: ClientResponse): Promise<ClientResponse> {
    const engine = this.#init.engine;
    if (r.code === 250 || !engine.hasHandler("smtp_client_rewrite_delivery_status")) return r;
    const c = item.components;
    const enh = r.enhanced ? `${r.enhanced.class}.${r.enhanced.subject}.${r.enhanced.detail} ` : "";
    const line = `${r.code} ${enh}${r.text}`.replace(/\n/g, "\\r\\n");
    const ret = await engine.callOrThrow("smtp_client_rewrite_delivery_status", "sssss", [
      line,
      c.domain,
      c.tenant ?? null,
      c.campaign ?? null,
      c.routingDomain ?? c.domain,
    ]);
    if (typeof ret !== "number" || ret === r.code) return r;
    return {
      ...r,
      code: ret,
      text: `${r.text} (kumomta: status was rewritten from ${r.code} -> ${ret})`,
    };
  }

  async #dispatch(): Promise<void> {
    let item = this.#take();
    while (item && !this.#stopping) {
      let path: EgressPathConfig;
      let plan: ConnectionTarget[] | { outcome: AttemptOutcome; response: ResponseRecord };
      try {
        path = await this.pathConfig();
        this.#maybeSpawn();
        plan = await this.#plan(path);
      } catch (e) {
        this.#failAll(
          item,
          "TransientFailure",
          internal(451, `4.4.4 failed to resolve queue ${this.name}: ${(e as Error).message}`),
        );
        item = this.#take();
        continue;
      }
      if (!Array.isArray(plan)) {
        this.#failAll(item, plan.outcome, plan.response);
        item = this.#take();
        continue;
      }
      if (this.#connThrottle) {
        for (let i = 0; i < 1000; i++) {
          const r = this.#connThrottle.tryAcquire();
          if (r.ok) break;
          await sleep(Math.min(r.retryAfterMs, 60_000));
        }
      }
      // Connect: walk the plan (next MX on failure).
      let client: SmtpClient | null = null;
      let target: ConnectionTarget | null = null;
      const errors: string[] = [];
      let idx = 0;
      for (; idx < plan.length && !this.#stopping; idx++) {
        try {
          client = await SmtpClient.connect(this.#clientPlan(path, plan[idx]));
          target = plan[idx];
          break;
        } catch (e) {
          errors.push(e instanceof ConnectError ? e.message : String(e));
        }
      }
      if (!client || !target) {
        this.#failAll(
          item,
          "TransientFailure",
          internal(
            400,
            `KumoMTA internal: failed to connect to any candidate hosts: ${errors.join(", ")}`,
          ),
        );
        item = this.#take();
        continue;
      }
      this.#clients.add(client);
      const sessionId = crypto.randomUUID();
      const peer: PeerAddress = {
        name: target.name,
        addr: target.port === 25 ? target.addr : `${target.addr}:${target.port}`,
      };
      const sourceAddress: SourceAddress = client.plan.haProxy
        ? { address: client.localAddress, server: client.plan.haProxy.server, protocol: "haproxy" }
        : { address: client.localAddress };
      try {
        while (item && !client.closed) {
          if (this.#msgThrottle) {
            for (let i = 0; i < 1000; i++) {
              const r = this.#msgThrottle.tryAcquire();
              if (r.ok) break;
              await sleep(Math.min(r.retryAfterMs, 60_000));
            }
          }
          const cur: Pending = item;
          const msg = cur.msg;
          let responses: ClientResponse[];
          try {
            responses = await client.send({
              sender: msg.sender.email,
              recipients: msg.recipients.map((r) => r.email),
              data: msg.getData(),
            }, path.maxRecipientsPerBatch);
          } catch (e) {
            const te = e as Error & { timedOut?: boolean };
            const resp = te.timedOut
              ? internal(421, `4.4.2 KumoMTA internal: failed to send message: ${te.message}`)
              : internal(400, `KumoMTA internal: failed to send message: ${te.message}`);
            this.#failAll(cur, "TransientFailure", resp, {
              peer,
              sourceAddress,
              sessionId,
              tls: client.tlsInfo ?? undefined,
            });
            item = undefined;
            break;
          }
          const results: RecipientResult[] = [];
          for (let i = 0; i < responses.length; i++) {
            const r = await this.#rewrite(cur, responses[i]).catch(() => responses[i]);
            results.push({ index: i, outcome: classifyReply(r.code), response: toRecord(r) });
          }
          this.#report(cur, results, {
            peer,
            sourceAddress,
            sessionId,
            tls: client.tlsInfo ?? undefined,
          });
          if (client.delivered >= path.maxDeliveriesPerConnection) {
            item = this.#take();
            break;
          }
          item = (await this.#waitIdle(path.idleTimeout)) ?? undefined;
        }
      } finally {
        this.#clients.delete(client);
        await client.quit();
      }
    }
    if (item) this.#pending.splice(this.#head, 0, item);
  }

  /** Stop dispatching: close connections; undelivered messages are returned. */
  async stop(): Promise<Message[]> {
    this.#stopping = true;
    for (const fn of this.#idle.splice(0)) fn(null);
    await Promise.all([...this.#dispatchers]);
    const left: Message[] = [];
    for (let p = this.#take(); p; p = this.#take()) left.push(p.msg);
    return left;
  }
}
