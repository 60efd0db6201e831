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
import { formatDuration } from "../util/duration.ts"; // [admin] ready-q-states context
import {
  countConnection,
  observeDeliverLatency,
  readyQueueProtocol,
  readyQueueService,
} from "../metrics/kumo_metrics.ts"; // [metrics]
import type { DeliveryDriver, DeliverySession } from "./delivery_driver.ts";
import {
  acquireConnectionLeases,
  namedThrottles,
  onLeaseReleased,
  sharedThrottle,
} from "./shared_limits.ts";
import type { KeySource } from "../policy/config/schema.ts";
import { diag } from "../log/diag.ts";
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
  /** `delivery_protocol` for the records; absent = `"ESMTP"`. */
  deliveryProtocol?: string;
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
  /** The egress pool the message's own queue uses (several pools may share a source). */
  pool?: string;
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
  /**
   * A message taken back without an attempt (a rate throttle would wait
   * longer than `idle_timeout`): the queue stage re-schedules it `delayMs`
   * from now and logs Delayed with `context`. Without it such messages wait.
   */
  onDelayed?: (msg: Message, delayMs: number, context: string) => void;
  hostname?: string;
  /**
   * [admin] Asked as a dispatcher pulls a message: false means the queue
   * stage took it back (admin bounce, suspension) and it is skipped.
   */
  admit?: (msg: Message) => boolean;
  /**
   * A non-SMTP protocol (custom_lua, maildir: src/egress/delivery_driver.ts);
   * absent = SMTP to `mx`.
   */
  driver?: DeliveryDriver;
}

/**
 * Build the ready-queue name: `<source>-><site>@<protocol>`, protocol
 * `smtp_client`, `lua:<constructor>` or `maildir:<path>` (queues-and-delivery §2).
 */
export function readyQueueName(source: string, site: string, protocol = "smtp_client"): string {
  return `${source}->${site}@${protocol}`;
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

/** `ip:port`, IPv6 in brackets (Rust's SocketAddr Display). */
function socketAddr(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** True for `{}` (without allocating a key array). */
function isEmpty(o: Record<string, unknown>): boolean {
  for (const _ in o) return false;
  return true;
}

/** Read a KeySource (`data` or `file`; a file's trailing newline is dropped). */
function readKeySource(src: KeySource, what: string): Promise<string> {
  if (src.kind === "data") return Promise.resolve(src.data);
  if (src.kind === "file") return Deno.readTextFile(src.path).then((t) => t.replace(/\r?\n$/, ""));
  return Promise.reject(new Error(`Cannot read ${what}: "${src.kind}" is not supported`));
}

/** TLS keys Deno's TLS client cannot honour (no cipher or option selection). */
const IGNORED_TLS_KEYS = [
  ["openssl_cipher_list", "opensslCipherList"],
  ["openssl_cipher_suites", "opensslCipherSuites"],
  ["openssl_options", "opensslOptions"],
  ["rustls_cipher_suites", "rustlsCipherSuites"],
] as const;
const warnedTlsKeys = new Set<string>();

/** Say once per key that it has no effect (README "Delivery" lists them too). */
function warnIgnoredTlsKeys(cfg: EgressPathConfig): void {
  for (const [key, field] of IGNORED_TLS_KEYS) {
    if (cfg[field] === undefined || warnedTlsKeys.has(key)) continue;
    warnedTlsKeys.add(key);
    diag.warn(
      "kumod::egress",
      `Ignoring egress path key "${key}": the TLS client offers no cipher or option selection`,
    );
  }
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
  /** Successive connection plans that failed (consecutive_connection_failures_before_delay). */
  #planFailures = 0;
  /** `remember_broken_tls`: until when STARTTLS is treated as not offered. */
  #brokenTlsUntil = 0;
  /** The AUTH PLAIN password of the current path config, once read. */
  #authPassword: { path: EgressPathConfig; password: Promise<string> } | null = null;
  /** The client certificate of the current path config, once read. */
  #clientCert: {
    path: EgressPathConfig;
    pem: Promise<{ cert: string; key: string } | undefined>;
  } | null = null;
  /** A spawn is waiting for a named `additional_connection_limits` lease. */
  #leaseWait = false;
  /** `source_selection_rate` of this (source, site). */
  #selectThrottle: Throttle | null = null;

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

  /** [metrics] `provider_name` of the path config, once known. */
  get providerName(): string | undefined {
    return this.#path?.providerName;
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
    if (!old || old.sourceSelectionRate?.text !== cfg.sourceSelectionRate?.text) {
      this.#selectThrottle = cfg.sourceSelectionRate ? new Throttle(cfg.sourceSelectionRate) : null;
    }
    warnIgnoredTlsKeys(cfg);
    return cfg;
  }

  /**
   * Whether the pool may pick this source for this site now:
   * `source_selection_rate` and every `additional_source_selection_rates`
   * entry (shared by name) must have room; each one checked takes a slot.
   * True before the path config is known.
   */
  trySelect(): boolean {
    const path = this.#path;
    if (!path) return true;
    if (this.#selectThrottle === null && isEmpty(path.additionalSourceSelectionRates)) return true;
    const named = namedThrottles(path.additionalSourceSelectionRates);
    for (const t of this.#selectThrottle ? [this.#selectThrottle, ...named] : named) {
      if (!t.tryAcquire().ok) return false;
    }
    return true;
  }

  /** Hand a message over (with its queue's pool name); a dispatcher picks it up. */
  enqueue(msg: Message, components: QueueComponents, pool?: string): void {
    const item = { msg, components, pool };
    const idle = this.#idle.shift();
    if (idle) return idle(item);
    this.#pending.push(item);
    this.#maybeSpawn();
  }

  #take(): Pending | undefined {
    const admit = this.#init.admit;
    for (;;) {
      const item = this.#takeRaw();
      if (!item || !admit || admit(item.msg)) return item;
    }
  }

  /** [admin] Take every waiting message out (ready-queue suspension pushes them back). */
  drain(): Message[] {
    const out: Message[] = [];
    for (let p = this.#takeRaw(); p; p = this.#takeRaw()) out.push(p.msg);
    return out;
  }

  /**
   * [admin] Active states for ready-q-states: `connection_limited` while
   * every allowed connection is busy and messages wait;
   * `connection_rate_throttled` from a `max_connection_rate` refusal until
   * the throttle would admit a connection again.
   */
  states(): Record<string, { context: string; since: string }> {
    const out: Record<string, { context: string; since: string }> = {};
    const rate = this.#rateThrottled;
    if (rate !== undefined && Date.now() < rate.until) {
      out.connection_rate_throttled = { context: rate.context, since: rate.since };
    } else this.#rateThrottled = undefined;
    const limit = this.#path?.connectionLimit.limit;
    if (limit !== undefined && this.#active >= limit && this.size > 0) {
      this.#limitedSince ??= new Date().toISOString();
      out.connection_limited = {
        context: `connection_limit=${limit} reached`,
        since: this.#limitedSince,
      };
    } else this.#limitedSince = undefined;
    return out;
  }

  #limitedSince: string | undefined;
  /** [admin] The last `max_connection_rate` refusal (ready-q-states). */
  #rateThrottled: { until: number; since: string; context: string } | undefined;

  /** [admin] A connection was refused by `max_connection_rate` for `ms`. */
  #noteRateThrottled(ms: number): void {
    const now = Date.now();
    this.#rateThrottled = {
      until: now + ms,
      since: this.#rateThrottled?.since ?? new Date(now).toISOString(),
      context: `max_connection_rate throttling for ${formatDuration(ms)}`,
    };
  }

  /** [metrics] Waiting messages whose data is in memory (`message_data_resident_count`). */
  dataResidentCount(): number {
    let n = 0;
    for (let i = this.#head; i < this.#pending.length; i++) {
      if (this.#pending[i].msg.data !== null) n++;
    }
    return n;
  }

  #takeRaw(): Pending | undefined {
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
    // additional_connection_limits: one lease per named limit, shared by every path naming it.
    const extra = this.#path?.additionalConnectionLimits;
    let release: (() => void) | null = null;
    if (extra !== undefined && !isEmpty(extra)) {
      release = acquireConnectionLeases(extra);
      if (release === null) {
        if (!this.#leaseWait) {
          this.#leaseWait = true;
          onLeaseReleased(() => {
            this.#leaseWait = false;
            this.#maybeSpawn();
          });
        }
        return;
      }
    }
    this.#active++;
    const driver = this.#init.driver;
    const run = driver ? this.#dispatchDriver(driver) : this.#dispatch();
    const p = run.catch(() => {}).finally(() => {
      release?.();
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
      egressPool: item.pool ?? this.poolName,
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
            // Upstream prints the resolved address as `<host>/<addr>`.
            `5.4.4 ${t.name}/${t.addr} is on the list of prohibited_hosts ${
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
      lmtp: path.useLmtp,
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

  /** Whether the port of `t` came from the routing domain or mx_list (not smtp_port/remote_port). */
  #routePort(t: ConnectionTarget): boolean {
    const mx = this.mx;
    if (mx.port !== undefined) return true;
    return mx.targets?.some((x) => x.port !== undefined && x.port === t.port) ?? false;
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

  /**
   * How long a rate throttle makes us wait: 0 = acquired now; a value above
   * `maxWait` means "do not wait, delay instead" (nothing was acquired).
   */
  async #acquire(t: Throttle, maxWait: number): Promise<number> {
    for (let i = 0; i < 1000 && !this.#stopping; i++) {
      const r = t.tryAcquire();
      if (r.ok) return 0;
      if (r.retryAfterMs > maxWait) return r.retryAfterMs;
      await sleep(r.retryAfterMs);
    }
    return 0;
  }

  /** Give `item` and everything waiting back to the queue stage for `ms`. */
  #delayAll(item: Pending, ms: number, context: string): void {
    const delayed = this.#init.onDelayed;
    if (!delayed) {
      this.#pending.splice(this.#head, 0, item);
      return;
    }
    delayed(item.msg, ms, context);
    for (let p = this.#take(); p; p = this.#take()) delayed(p.msg, ms, context);
  }

  /**
   * Wait for `max_message_rate`, then for each `additional_message_rate_throttles`
   * entry (smallest rate first). Returns null when all admitted the message,
   * else the wait that exceeded `maxWait` and what refused it.
   */
  async #acquireMessageRate(
    path: EgressPathConfig,
    maxWait: number,
  ): Promise<{ wait: number; context: string } | null> {
    if (this.#msgThrottle) {
      const wait = await this.#acquire(this.#msgThrottle, maxWait);
      if (wait > 0) return { wait, context: `ready queue ${this.name} max_message_rate throttled` };
    }
    if (isEmpty(path.additionalMessageRateThrottles)) return null; // hot path: no allocation
    const named = Object.entries(path.additionalMessageRateThrottles)
      .sort(([, a], [, b]) => a.limit / a.periodMs - b.limit / b.periodMs);
    for (const [name, spec] of named) {
      const wait = await this.#acquire(sharedThrottle(name, spec), maxWait);
      if (wait > 0) {
        return {
          wait,
          context: `ready queue ${this.name} additional_message_rate_throttles ${name} throttled`,
        };
      }
    }
    return null;
  }

  /** The client certificate of `path` (`tls_certificate` + `tls_private_key`, read once). */
  #clientCertificate(path: EgressPathConfig): Promise<{ cert: string; key: string } | undefined> {
    if (this.#clientCert?.path !== path) {
      const cert = path.tlsCertificate, key = path.tlsPrivateKey;
      this.#clientCert = {
        path,
        pem: cert === undefined || key === undefined ? Promise.resolve(undefined) : Promise.all([
          readKeySource(cert, "tls_certificate"),
          readKeySource(key, "tls_private_key"),
        ]).then(([c, k]) => ({ cert: c, key: k })),
      };
    }
    return this.#clientCert.pem;
  }

  /** The AUTH PLAIN settings of `path` (password read from its KeySource once). */
  async #auth(path: EgressPathConfig): Promise<SmtpClientPlan["auth"]> {
    if (path.smtpAuthPlainUsername === undefined) return undefined;
    if (this.#authPassword?.path !== path) {
      const src = path.smtpAuthPlainPassword;
      this.#authPassword = {
        path,
        password: src === undefined
          ? Promise.resolve("")
          : readKeySource(src, "smtp_auth_plain_password"),
      };
    }
    return {
      username: path.smtpAuthPlainUsername,
      password: await this.#authPassword.password,
      allowWithoutTls: path.allowSmtpAuthPlainWithoutTls,
      allowWithoutValidCertificate: path.allowSmtpAuthPlainWithoutValidCertificate,
    };
  }

  /**
   * Connect to one target, applying `remember_broken_tls` and the clear-text
   * fall-backs after a failed handshake (§5.1 table).
   */
  async #connect(path: EgressPathConfig, t: ConnectionTarget): Promise<SmtpClient> {
    const cp = this.#clientPlan(path, t);
    cp.auth = await this.#auth(path);
    cp.authTimeout = path.authTimeout;
    cp.clientCertificate = await this.#clientCertificate(path);
    const opportunistic = cp.enableTls === "Opportunistic" ||
      cp.enableTls === "OpportunisticInsecure";
    if (opportunistic && this.#brokenTlsUntil > Date.now()) cp.enableTls = "Disabled";
    try {
      return await SmtpClient.connect(cp);
    } catch (e) {
      if (!(e instanceof ConnectError) || !e.tlsHandshakeFailed) throw e;
      if (path.rememberBrokenTls) this.#brokenTlsUntil = Date.now() + path.rememberBrokenTls;
      // OpportunisticInsecure continues without TLS; the handshake already
      // consumed the connection, so that means a new clear-text one.
      const fallback = cp.enableTls === "OpportunisticInsecure" ||
        (cp.enableTls === "Opportunistic" && path.opportunisticTlsReconnectOnFailedHandshake);
      if (!fallback) throw e;
      return await SmtpClient.connect({ ...cp, enableTls: "Disabled" });
    }
  }

  /**
   * A source set up for SOCKS5 (`socks5_proxy_server` + `socks5_proxy_source_address`)
   * cannot be served: SOCKS5 is not implemented, and connecting directly
   * would send from the wrong address. Returns the connect error, or null.
   */
  #socks5Refusal(): string | null {
    const src = this.source;
    if (!src.socks5ProxyServer || !src.socks5ProxySourceAddress) return null;
    return `Cannot connect via SOCKS5 proxy ${src.socks5ProxyServer} for source "${src.name}": ` +
      "SOCKS5 proxies are not supported";
  }

  async #dispatch(): Promise<void> {
    let item = this.#take();
    let plan: ConnectionTarget[] | null = null;
    let idx = 0; // next plan entry to connect to
    let path!: EgressPathConfig;
    while (item && !this.#stopping) {
      if (plan === null || idx >= plan.length) {
        let got: ConnectionTarget[] | { outcome: AttemptOutcome; response: ResponseRecord };
        try {
          path = await this.pathConfig();
          this.#maybeSpawn();
          got = await this.#plan(path);
        } catch (e) {
          this.#failAll(
            item,
            "TransientFailure",
            internal(451, `4.4.4 failed to resolve queue ${this.name}: ${(e as Error).message}`),
          );
          item = this.#take();
          continue;
        }
        if (!Array.isArray(got)) {
          this.#failAll(item, got.outcome, got.response);
          item = this.#take();
          continue;
        }
        plan = got;
        idx = 0;
      }
      if (this.#connThrottle) {
        const wait = await this.#acquire(this.#connThrottle, path.idleTimeout);
        if (wait > 0) {
          this.#noteRateThrottled(wait); // [admin]
          this.#delayAll(item, wait, `ready queue ${this.name} max_connection_rate throttled`);
          item = undefined;
          break;
        }
      }
      // Connect: walk the plan (next host on failure). The session id is made
      // first so that a failed plan's TransientFailure carries it (logs §2).
      const sessionId = crypto.randomUUID();
      let client: SmtpClient | null = null;
      let target: ConnectionTarget | null = null;
      const errors: string[] = [];
      const socks5 = this.#socks5Refusal();
      if (socks5) {
        errors.push(socks5);
        idx = plan.length; // never connect directly instead of through the proxy
      }
      for (; idx < plan.length && !this.#stopping; idx++) {
        try {
          client = await this.#connect(path, plan[idx]);
          target = plan[idx++];
          break;
        } catch (e) {
          errors.push(e instanceof ConnectError ? e.message : String(e));
        }
      }
      if (!client || !target) {
        plan = null;
        if (++this.#planFailures > path.consecutiveConnectionFailuresBeforeDelay) {
          this.#planFailures = 0;
          const resp = internal(
            451,
            `4.4.1 KumoMTA internal: bulk delay of ready queue ${this.name}: ` +
              `No answer from any hosts listed in MX: ${errors.join(", ")}`,
          );
          this.#failAll(item, "TransientFailure", resp, { sessionId });
          for (let p = this.#take(); p; p = this.#take()) {
            this.#failAll(p, "TransientFailure", resp, { sessionId });
          }
          item = undefined;
          break;
        }
        this.#failAll(
          item,
          "TransientFailure",
          internal(
            400,
            `KumoMTA internal: failed to connect to any candidate hosts: ${errors.join(", ")}`,
          ),
          { sessionId },
        );
        item = this.#take();
        continue;
      }
      this.#planFailures = 0;
      this.#clients.add(client);
      countConnection("smtp_client"); // [metrics]
      countConnection(`smtp_client:${this.name}`);
      const peer: PeerAddress = {
        name: target.name,
        // `:port` only when the route itself named one (logs §1.2), not for smtp_port.
        addr: this.#routePort(target) ? `${target.addr}:${target.port}` : target.addr,
      };
      // Through HAProxy the address is the one the proxy was asked to use, port 0 (as upstream).
      const hp = client.plan.haProxy;
      const sourceAddress: SourceAddress = hp
        ? { address: socketAddr(hp.sourceAddress, 0), server: hp.server, protocol: "haproxy" }
        : { address: client.localAddress };
      const extra = () => ({ peer, sourceAddress, sessionId, tls: client.tlsInfo ?? undefined });
      let broken = false; // 421, I/O error or timeout ended the session
      try {
        while (item && !client.closed) {
          const refused = await this.#acquireMessageRate(path, path.idleTimeout);
          if (refused) {
            this.#delayAll(item, refused.wait, refused.context);
            item = undefined;
            break;
          }
          const cur: Pending = item;
          const msg = cur.msg;
          let responses: ClientResponse[];
          const t0 = performance.now(); // [metrics]
          try {
            responses = await client.send({
              sender: msg.sender.email,
              recipients: msg.recipients.map((r) => r.email),
              data: msg.getData(),
            }, path.maxRecipientsPerBatch);
          } catch (e) {
            broken = true;
            // try_next_host_on_transport_error: keep the message for the next host.
            if (path.tryNextHostOnTransportError && idx < plan.length) break;
            const te = e as Error & { timedOut?: boolean };
            const resp = te.timedOut
              ? internal(421, `4.4.2 KumoMTA internal: failed to send message: ${te.message}`)
              : internal(400, `KumoMTA internal: failed to send message: ${te.message}`);
            this.#failAll(cur, "TransientFailure", resp, extra());
            item = this.#take();
            break;
          }
          observeDeliverLatency("smtp_client", (performance.now() - t0) / 1000); // [metrics]
          const results: RecipientResult[] = [];
          for (let i = 0; i < responses.length; i++) {
            const r = await this.#rewrite(cur, responses[i]).catch(() => responses[i]);
            results.push({ index: i, outcome: classifyReply(r.code), response: toRecord(r) });
          }
          this.#report(cur, results, extra());
          if (client.closed) {
            broken = true;
            item = this.#take();
            break;
          }
          if (client.delivered >= path.maxDeliveriesPerConnection) {
            item = this.#take();
            plan = null; // a fresh connection, from the top of the plan
            break;
          }
          item = (await this.#waitIdle(path.idleTimeout)) ?? undefined;
        }
      } finally {
        this.#clients.delete(client);
        await client.quit();
      }
      if (broken && plan !== null) {
        const strategy = path.reconnectStrategy;
        if (strategy === "TerminateSession") break;
        if (strategy === "ReconnectSameHost") idx--;
        // ConnectNextHost: idx already points at the next host; when the
        // plan is used up the session ends.
        else if (idx >= plan.length) break;
      }
    }
    if (item) this.#pending.splice(this.#head, 0, item);
  }

  /**
   * One dispatcher of a non-SMTP protocol: open a session, send batches
   * (up to `batch_size`; waiting up to `max_batch_latency` for
   * `min_batch_size`), reuse it while messages keep coming within
   * `idle_timeout` and up to `max_deliveries_per_connection`, then close.
   */
  async #dispatchDriver(driver: DeliveryDriver): Promise<void> {
    let item = this.#take();
    let session: DeliverySession | null = null;
    let delivered = 0;
    const extra = { peer: driver.peer, deliveryProtocol: driver.deliveryProtocol };
    try {
      while (item && !this.#stopping) {
        let path: EgressPathConfig;
        try {
          path = await this.pathConfig();
          this.#maybeSpawn();
        } catch (e) {
          this.#failAll(
            item,
            "TransientFailure",
            internal(451, `4.4.4 failed to resolve queue ${this.name}: ${(e as Error).message}`),
            extra,
          );
          item = this.#take();
          continue;
        }
        if (session === null) {
          if (this.#connThrottle) {
            const wait = await this.#acquire(this.#connThrottle, path.idleTimeout);
            if (wait > 0) {
              this.#noteRateThrottled(wait); // [admin]
              this.#delayAll(item, wait, `ready queue ${this.name} max_connection_rate throttled`);
              item = undefined;
              break;
            }
          }
          try {
            session = await driver.open(item.components);
            delivered = 0;
            countConnection(readyQueueProtocol(this.name)); // [metrics]
            countConnection(readyQueueService(this.name));
          } catch (e) {
            this.#failAll(
              item,
              "TransientFailure",
              internal(
                400,
                `KumoMTA internal: failed to connect to any candidate hosts: ${
                  (e as Error).message
                }`,
              ),
              extra,
            );
            item = this.#take();
            continue;
          }
        }
        // Collect a batch.
        const batch: Pending[] = [item];
        const deadline = Date.now() + driver.maxBatchLatency;
        while (batch.length < driver.batchSize) {
          const next = this.#take();
          if (next) {
            batch.push(next);
            continue;
          }
          const left = deadline - Date.now();
          if (batch.length >= driver.minBatchSize || left <= 0) break;
          const waited = await this.#waitIdle(left);
          if (!waited) break;
          batch.push(waited);
        }
        const refused = await this.#acquireMessageRate(path, path.idleTimeout);
        if (refused) {
          for (const b of batch.slice(1)) this.#pending.splice(this.#head, 0, b);
          this.#delayAll(item, refused.wait, refused.context);
          item = undefined;
          break;
        }
        let results;
        const t0 = performance.now(); // [metrics]
        try {
          results = await session.send(batch.map((b) => b.msg));
        } catch (e) {
          const resp = internal(
            400,
            `KumoMTA internal: failed to send message: ${(e as Error).message}`,
          );
          results = batch.map(() => ({ outcome: "TransientFailure" as const, response: resp }));
          await session.close();
        }
        observeDeliverLatency(readyQueueProtocol(this.name), (performance.now() - t0) / 1000);
        for (let i = 0; i < batch.length; i++) {
          const r = results[i];
          this.#failAll(batch[i], r.outcome, r.response, extra);
        }
        delivered += batch.length;
        if (session.closed || delivered >= path.maxDeliveriesPerConnection) {
          await session.close();
          session = null;
          item = this.#take();
          continue;
        }
        item = (await this.#waitIdle(path.idleTimeout)) ?? undefined;
      }
    } finally {
      if (session) await session.close();
    }
    if (item) this.#pending.splice(this.#head, 0, item);
  }

  /**
   * Stop dispatching: in-flight deliveries get `system_shutdown_timeout`
   * (default: the sum of the per-message timeouts) to finish, then their
   * sessions are aborted (their messages are reported as transient
   * failures and stay spooled). Undelivered messages are returned.
   */
  async stop(): Promise<Message[]> {
    this.#stopping = true;
    for (const fn of this.#idle.splice(0)) fn(null);
    const all = Promise.all([...this.#dispatchers]);
    const p = this.#path;
    if (p && this.#clients.size > 0) {
      const grace = p.systemShutdownTimeout ??
        p.mailFromTimeout + p.rcptToTimeout + p.dataTimeout + p.dataDotTimeout;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = await Promise.race([
        all.then(() => false),
        new Promise<boolean>((r) => timer = setTimeout(() => r(true), grace)),
      ]);
      clearTimeout(timer);
      if (late) {
        diag.warn(
          "kumod::egress",
          `Aborting ${this.#clients.size} session(s) of ${this.name}: system_shutdown_timeout reached`,
        );
        for (const c of this.#clients) c.close();
      }
    }
    await all;
    const left: Message[] = [];
    for (let p = this.#take(); p; p = this.#take()) left.push(p.msg);
    return left;
  }
}
