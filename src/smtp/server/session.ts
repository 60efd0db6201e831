/**
 * SmtpSession: one inbound ESMTP connection, as a state machine driven by
 * the LineReader (queues-and-delivery.md §9.2–§9.4, lua-api.md §4.3, §9).
 *
 * Place on the mail's path: created by the listener for each accepted
 * socket; it greets, parses each command in order (pipelining works because
 * commands are taken strictly from the input buffer), runs the policy
 * events, and at end of DATA hands the transaction to the DATA phase. One
 * ordered `state`, a verb → handler table, and one writer (`#reply`) through
 * which every reply passes: it calls `smtp_server_rewrite_response` only
 * when the policy has that handler, logs `Rejection` records, queues the
 * text and flushes it in one socket write when the input runs dry; a 421
 * closes. Before the banner: the 421 guards (shutting down, disk too full,
 * spools not open), then an optional PROXY header; XCLIENT re-binds the
 * session to other addresses; 20 protocol errors end it with 421. It never
 * delivers mail and never touches the spool directly.
 *
 * @module
 */

import { cancelDeadline, type Deadline, deadline } from "../../util/coarse_timer.ts";
import { isIP } from "node:net";
import type net from "node:net";
import type tls from "node:tls";
import { LineReader, type ReaderEvent } from "../protocol/line_reader.ts";
import { type Command, parseCommand } from "../protocol/command.ts";
import { formatReply } from "../protocol/reply.ts";
import { type EnvelopeAddress, formatEnvelopeAddress } from "../../message/envelope_address.ts";
import { ConnMeta } from "../../policy/conn_methods.ts";
import {
  type EsmtpListenerConfig,
  type EsmtpListenerParams,
  mergeDynamicParams,
  resolveListenerParams,
} from "../../policy/config/esmtp_listener.ts";
import { PolicyError, PolicyReject } from "../../policy/policy_error.ts";
import { diag } from "../../log/diag.ts";
import type { ReceptionServices } from "./reception_services.ts";
import { decideRelay, ListenerDomainCache, type RelayVerdict } from "./relay.ts";
import { isLoggedRejection, rejectionRecord, type SessionLogInfo } from "./reception_log.ts";
import { runDataPhase } from "./data_phase.ts";
import { observeSmtpsrv } from "../../metrics/kumo_metrics.ts"; // [metrics]
import { upgradeToTls } from "./starttls.ts";
import { serverTls, verifiedPeerSubject } from "./tls_material.ts";
import {
  AUTH_MECHANISMS,
  AUTH_REPLIES,
  authVerdict,
  decodeLoginField,
  decodePlain,
  needTls,
  type PlainCredentials,
  unsupportedMechanism,
} from "./auth.ts";
import { parseProxyHeader, PROXY_HEADER_MAX } from "./proxy_header.ts";

/**
 * Session states, in the order a session moves through them:
 * `greeting` (before the banner) → `ready` (no transaction) → `mail` (MAIL
 * accepted) → `rcpt` (≥1 RCPT accepted) → `data` (reading the body) /
 * `auth` (waiting for a 334 response) → back to `ready`; `closed` is final.
 */
export type SessionState = "greeting" | "ready" | "mail" | "rcpt" | "data" | "auth" | "closed";

/** Where the listener socket is: `"ip:port"` strings and bare IPs. */
export interface SessionEndpoints {
  peerIp: string;
  peerPort: number;
  localIp: string;
  localPort: number;
  /** [metrics] The listener's bound address (`esmtp_listener:<addr>` series). */
  listener?: string;
}

/** Buffered input above which the socket is paused while a command runs. */
const PAUSE_BYTES = 1 << 20;

/**
 * Protocol errors (500–504 replies) a session may cause before it is told
 * `421 4.7.0 <host> too many errors` and closed (Postfix's
 * `smtpd_hard_error_limit` default; KumoMTA has no such knob).
 */
export const MAX_PROTOCOL_ERRORS = 20;

/**
 * What a command step returns: nothing when it finished synchronously (no
 * policy event to wait for: the common case, no promise allocated), or the
 * promise of its end. Callers await only a promise.
 */
type Step = void | Promise<void>;

type Handler = (s: SmtpSession, cmd: Command, line: string) => Step;

function hostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/**
 * One inbound connection.
 *
 * @example
 * ```ts
 * const s = new SmtpSession(socket, listenerConfig, services, endpoints);
 * await s.start(); // banner sent, commands handled until the client quits
 * ```
 */
export class SmtpSession {
  readonly #services: ReceptionServices;
  readonly #listener: EsmtpListenerConfig;
  #ends: SessionEndpoints;
  #socket: net.Socket | tls.TLSSocket;
  #params: EsmtpListenerParams;
  #reader!: LineReader;
  #conn: ConnMeta;
  #relayCache: ListenerDomainCache;
  #log: SessionLogInfo;

  state: SessionState = "greeting";
  #ehlo = "";
  #tls: { version: string; cipher: string } | null = null;
  #authenticated = false;
  /** Which `334` continuation the next line answers (state `auth`). */
  #authStep: { step: "plain" } | { step: "login_user" } | {
    step: "login_password";
    user: string;
  } | null = null;
  #sender: EnvelopeAddress | null = null;
  #rcpts: EnvelopeAddress[] = [];
  /** Accepted RCPTs on this connection (max_messages_per_connection). */
  #rcptCount = 0;
  /** Command line the next reply answers (`"DATA"` at end of data, null at banner). */
  #command: string | null = null;
  /** 500–504 replies so far (MAX_PROTOCOL_ERRORS). */
  #protocolErrors = 0;
  /** Bytes that arrived after a PROXY header, before the reader existed. */
  #earlyInput: Uint8Array | null = null;

  #out = "";
  #running = false;
  #paused = false;
  #closeAfterFlush = false;
  #lastRead = Date.now();
  #idleTimer: Deadline | undefined;
  #linger: Deadline | undefined;
  #closedResolve!: () => void;
  /** Resolves once the socket is closed. */
  readonly closed: Promise<void>;

  constructor(
    socket: net.Socket,
    listener: EsmtpListenerConfig,
    services: ReceptionServices,
    ends: SessionEndpoints,
  ) {
    this.#socket = socket;
    this.#listener = listener;
    this.#services = services;
    this.#ends = ends;
    this.closed = new Promise((r) => (this.#closedResolve = r));
    this.#params = resolveListenerParams(listener, ends.peerIp, ends.localIp);
    this.#conn = new ConnMeta({
      ...this.#params.meta,
      reception_protocol: "ESMTP",
      received_from: hostPort(ends.peerIp, ends.peerPort),
      received_via: hostPort(ends.localIp, ends.localPort),
      hostname: this.#params.hostname,
    });
    this.#relayCache = new ListenerDomainCache(
      services.engine,
      this.#conn.values.received_via as string,
      this.#conn,
    );
    this.#log = {
      ehlo: "",
      peerIp: ends.peerIp,
      sessionId: crypto.randomUUID(),
      nodeId: services.nodeId,
      listener: ends.listener, // [metrics]
    };
    socket.on("close", () => this.#onClose()); // TCP_NODELAY: set by the listener
    socket.on("error", () => {});
  }

  /** Effective hostname of this session. */
  get hostname(): string {
    return this.#params.hostname;
  }

  /** Connection start (§9.2): guards, dynamic parameters, `connection_accepted`, banner. */
  async start(): Promise<void> {
    const engine = this.#services.engine;
    try {
      if (this.#services.shuttingDown) {
        return this.#early(`4.3.2 ${this.hostname} shutting down`);
      }
      if (this.#services.loadShedding?.()) {
        return this.#early(`4.3.2 ${this.hostname} load shedding. Try later`);
      }
      if (this.#services.diskTooFull?.()) {
        return this.#early(`4.3.2 ${this.hostname} disk is too full. Try later`);
      }
      if (this.#services.spools === null) {
        return this.#early(`4.3.2 ${this.hostname} waiting for spool startup. Try again soon!`);
      }
      if (this.#params.requireProxyProtocol && !(await this.#readProxyHeader())) return;
      await this.#dynamicParams();
      if (engine.hasHandler("smtp_server_connection_accepted")) {
        await engine.callOrThrow("smtp_server_connection_accepted", "c", [this.#conn]);
      }
    } catch (e) {
      if (e instanceof PolicyReject) {
        await this.#reply(e.code, e.text);
        this.#close();
        return;
      }
      this.#internalError(e);
      return;
    }
    this.#reader = new LineReader({
      lineLengthHardLimit: this.#params.lineLengthHardLimit,
      maxMessageSize: this.#params.maxMessageSize,
      invalidLineEndings: this.#params.invalidLineEndings,
    });
    if (this.#earlyInput !== null) this.#reader.push(this.#earlyInput);
    this.state = "ready";
    await this.#reply(220, `${this.hostname} ${this.#params.banner}`);
    this.#flush();
    this.#attach(this.#socket);
    this.#armIdleTimer();
    if (this.#earlyInput !== null) {
      this.#earlyInput = null;
      void this.#pump();
    }
  }

  /** Lua `smtp_server_get_dynamic_parameters`: merge its table into the params. */
  async #dynamicParams(): Promise<void> {
    const engine = this.#services.engine;
    if (!engine.hasHandler("smtp_server_get_dynamic_parameters")) return;
    const v = await engine.callOrThrow("smtp_server_get_dynamic_parameters", "sc", [
      this.#conn.values.received_via,
      this.#conn,
    ]);
    if (v !== undefined && v !== null) {
      this.#params = mergeDynamicParams(this.#params, v);
      for (const [k, val] of Object.entries(this.#params.meta)) this.#conn.set(k, val);
      this.#conn.set("hostname", this.#params.hostname);
    }
  }

  /**
   * The client is really `ends` (PROXY header or XCLIENT): re-resolve the
   * `peer`/`via` params and the address keys of conn meta, logs and relay checks.
   */
  #rebind(ends: SessionEndpoints): void {
    // lua-api.md §7.4: the socket's own addresses stay visible as orig_*
    // (the first rebind records them; later ones keep the true originals).
    if (this.#conn.get("orig_received_from") === undefined) {
      this.#conn.set("orig_received_from", this.#conn.get("received_from"));
      this.#conn.set("orig_received_via", this.#conn.get("received_via"));
    }
    this.#ends = ends;
    this.#params = resolveListenerParams(this.#listener, ends.peerIp, ends.localIp);
    for (const [k, val] of Object.entries(this.#params.meta)) this.#conn.set(k, val);
    this.#conn.set("received_from", hostPort(ends.peerIp, ends.peerPort));
    this.#conn.set("received_via", hostPort(ends.localIp, ends.localPort));
    this.#conn.set("hostname", this.#params.hostname);
    this.#relayCache = new ListenerDomainCache(
      this.#services.engine,
      this.#conn.values.received_via as string,
      this.#conn,
    );
    this.#log.peerIp = ends.peerIp;
  }

  /**
   * `require_proxy_protocol`: read a HAProxy v1/v2 header before the banner.
   * A missing or malformed header (or none within `client_timeout`) closes
   * the connection without a reply. Resolves true when the session goes on.
   */
  #readProxyHeader(): Promise<boolean> {
    const sock = this.#socket;
    return new Promise((resolve) => {
      let buf = new Uint8Array(0);
      const finish = (ok: boolean, why?: string) => {
        clearTimeout(timer);
        sock.off("data", onData);
        sock.off("close", onClose);
        sock.pause();
        if (!ok) {
          diag.info("kumod::smtp_server", `PROXY header from ${this.#ends.peerIp}: ${why}`);
          this.state = "closed";
          sock.destroy();
        }
        resolve(ok);
      };
      const onData = (chunk: Uint8Array) => {
        const next = new Uint8Array(buf.length + chunk.length);
        next.set(buf);
        next.set(chunk, buf.length);
        buf = next;
        const r = parseProxyHeader(buf);
        if (r.kind === "incomplete") {
          if (buf.length > PROXY_HEADER_MAX) finish(false, "header too long");
          return;
        }
        if (r.kind === "error") return finish(false, r.message);
        if (r.source && r.dest) {
          this.#rebind({
            peerIp: r.source.ip,
            peerPort: r.source.port,
            localIp: r.dest.ip,
            localPort: r.dest.port,
          });
        }
        if (r.consumed < buf.length) this.#earlyInput = buf.slice(r.consumed);
        finish(true);
      };
      const onClose = () => finish(false, "closed before the header");
      const timer = setTimeout(
        () => finish(false, "no header within client_timeout"),
        this.#params.clientTimeout,
      );
      sock.on("data", onData);
      sock.on("close", onClose);
      sock.resume();
    });
  }

  /** A 421 before the banner, then close (not logged: `4.3.2`). */
  async #early(text: string): Promise<void> {
    await this.#reply(421, text);
    this.#close();
  }

  /**
   * Shutdown: an idle session gets `421 4.3.2 <host> shutting down` now; a
   * busy one after its current command.
   */
  shutdown(): void {
    if (this.state === "closed") return;
    if (!this.#running) void this.#shutdownReply();
  }

  async #shutdownReply(): Promise<void> {
    if (this.state === "closed" || this.state === "greeting") return;
    this.#command = null;
    await this.#reply(421, `4.3.2 ${this.hostname} shutting down`);
    this.#flush();
  }

  /** Drop the connection at once. */
  destroy(): void {
    this.#socket.destroy();
  }

  // ---- input ------------------------------------------------------------------

  #attach(sock: net.Socket | tls.TLSSocket): void {
    sock.on("data", this.#onData);
    sock.resume();
  }

  #onData = (chunk: Uint8Array): void => {
    this.#lastRead = Date.now();
    this.#reader.push(chunk);
    if (!this.#running) {
      this.#running = true;
      queueMicrotask(this.#pumpLater);
    } else if (!this.#paused && this.#reader.bufferedLength > PAUSE_BYTES) {
      this.#paused = true;
      this.#socket.pause();
    }
  };

  /**
   * The pump runs in a microtask, after the socket's read callback has
   * returned: commands without a policy event are handled synchronously,
   * and replies written from inside the read callback measured ~5% more
   * CPU per message (inbound bench, alternating runs).
   */
  #pumpLater = () => void this.#pump();

  async #pump(): Promise<void> {
    this.#running = true;
    try {
      while (this.state !== "closed") {
        const ev = this.#reader.next();
        if (ev === null) break;
        const step = this.#handle(ev);
        if (step !== undefined) await step;
        if (this.#services.shuttingDown && (this.state as SessionState) !== "closed") {
          await this.#shutdownReply();
          break;
        }
      }
    } catch (e) {
      this.#internalError(e);
    } finally {
      this.#running = false;
      this.#flush();
      if (this.#paused && this.state !== "closed") {
        this.#paused = false;
        this.#socket.resume();
      }
    }
  }

  #handle(ev: ReaderEvent): Step {
    switch (ev.kind) {
      case "line":
        if (this.state === "auth") {
          this.#command = "AUTH"; // never log credentials
          return this.#authResponse(ev.line);
        }
        this.#command = redactAuth(ev.line);
        return this.#dispatch(parseCommand(ev.line), ev.line);
      case "too_long":
        this.#command = null;
        if (this.state === "auth") this.state = "ready";
        return this.#reply(500, "5.2.3 line too long");
      case "invalid_utf8":
        this.#command = null;
        if (this.state === "auth") this.state = "ready";
        return this.#reply(501, "5.5.2 Invalid UTF-8 in command");
      case "data":
        this.#command = "DATA";
        return this.#endOfData(ev);
    }
  }

  #dispatch(cmd: Command, line: string): Step {
    if (cmd.verb === "Invalid") return this.#reply(cmd.reply.code, replyText(cmd.reply));
    const handler = HANDLERS[cmd.verb] ?? notImplemented;
    let step: Step;
    try {
      step = handler(this, cmd, line);
    } catch (e) {
      return this.#handlerFailed(e);
    }
    if (step !== undefined) return step.catch((e) => this.#handlerFailed(e));
  }

  /** A command handler threw: a `kumo.reject` is answered, anything else ends the session. */
  #handlerFailed(e: unknown): Step {
    if (e instanceof PolicyReject) return this.#policyReject(e);
    throw e;
  }

  // ---- the one writer ------------------------------------------------------------

  /**
   * Queue one reply. Every reply goes through here: the rewrite hook (only
   * when defined; only then is the step asynchronous), the Rejection log,
   * the 421 close.
   */
  #reply(code: number, text: string): Step {
    if (this.state === "closed") return;
    if (this.#services.engine.hasHandler("smtp_server_rewrite_response")) {
      return this.#rewriteThenQueue(code, text);
    }
    return this.#queueReply(code, text);
  }

  /** `smtp_server_rewrite_response` may change the reply before it is queued. */
  async #rewriteThenQueue(code: number, text: string): Promise<void> {
    const engine = this.#services.engine;
    const r = await engine.call("smtp_server_rewrite_response", "nssc", [
      code,
      text,
      this.#command === null ? null : this.#command.split(" ")[0].toUpperCase(),
      this.#conn,
    ]);
    if (r.kind === "ok") {
      if (typeof r.values[0] === "number") code = r.values[0];
      if (typeof r.values[1] === "string") text = r.values[1];
    } else if (r.kind === "error" || r.kind === "reject") {
      diag.error(
        "kumod::smtp_server",
        `smtp_server_rewrite_response failed: ${r.message}`,
      );
    }
    await this.#queueReply(code, text);
  }

  /** The Rejection log, the text queued for the next flush, the 421 close. */
  #queueReply(code: number, text: string): Step {
    if (isLoggedRejection(code, text)) {
      this.#log.ehlo = this.#ehlo;
      this.#services.logs.submit(
        rejectionRecord(
          this.#log,
          code,
          text,
          this.#command,
          this.#sender?.email ?? "",
          this.#rcpts.length > 0 ? this.#rcpts[this.#rcpts.length - 1].email : "",
        ),
        { meta: this.#conn.values, getAllHeaders: () => [] },
      );
    }
    this.#out += formatReply(code, text);
    if (code === 421) this.#close();
    else if (code >= 500 && code <= 504 && ++this.#protocolErrors >= MAX_PROTOCOL_ERRORS) {
      this.#command = null;
      return this.#reply(421, `4.7.0 ${this.hostname} too many errors`);
    }
  }

  /** Write queued replies in one socket write. */
  #flush(): void {
    if (this.#out === "") return;
    const out = this.#out;
    this.#out = "";
    if (!this.#socket.destroyed) this.#socket.write(out);
    if (this.#closeAfterFlush) this.#socket.end();
  }

  #close(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.#closeAfterFlush = true;
    this.#flush();
    // Close our side once the last reply is flushed: a peer that then resets
    // the connection (smtp-source and many clients do) finds it already
    // gone, instead of costing us an ECONNRESET error object per session.
    // (end() also sends TLS close_notify. Destroying the socket from the
    // write callback instead, to save the shutdown(2), measured no gain and
    // when done inside the callback cost an ERR_STREAM_DESTROYED error
    // object per connection.)
    this.#socket.end(() => this.#socket.destroy());
    // end() waits for the peer on half-open sockets; do not linger.
    this.#linger = deadline(2000, () => this.#socket.destroy());
  }

  #onClose(): void {
    this.state = "closed";
    cancelDeadline(this.#idleTimer);
    cancelDeadline(this.#linger);
    this.#closedResolve();
  }

  /** `kumo.reject` / `kumo.disconnect` from an event. */
  async #policyReject(e: PolicyReject): Promise<void> {
    await this.#reply(e.code, e.text);
    if (e.disconnect) {
      if (e.how === "FollowWith421" && e.code !== 421) {
        this.#command = null;
        await this.#reply(421, `${this.hostname} disconnecting due to previous error`);
      }
      this.#close();
    }
  }

  #internalError(e: unknown): void {
    const msg = e instanceof PolicyError ? e.message : (e as Error)?.stack ?? String(e);
    diag.error("kumod::smtp_server", `session ${this.#log.sessionId}: ${msg}`);
    if (this.state === "closed") return;
    // Not awaited through the rewrite hook: the policy may be what failed.
    this.#out += formatReply(421, `4.3.0 ${this.hostname} technical difficulties`);
    this.#services.logs.submit(
      rejectionRecord(
        this.#log,
        421,
        `4.3.0 ${this.hostname} technical difficulties`,
        this.#command,
        this.#sender?.email ?? "",
        this.#rcpts.length > 0 ? this.#rcpts[this.#rcpts.length - 1].email : "",
      ),
      { meta: this.#conn.values, getAllHeaders: () => [] },
    );
    this.#close();
  }

  #armIdleTimer(): void {
    const timeout = this.#params.clientTimeout;
    const check = () => {
      if (this.state === "closed") return;
      const idle = Date.now() - this.#lastRead;
      if (this.#running || idle < timeout) {
        this.#idleTimer = deadline(this.#running ? timeout : timeout - idle, check);
        return;
      }
      this.#command = null;
      const step = this.#reply(421, `4.3.2 ${this.hostname} idle too long`);
      if (step === undefined) this.#flush();
      else void step.then(() => this.#flush());
    };
    this.#idleTimer = deadline(timeout, check);
  }

  #resetTransaction(): void {
    this.#sender = null;
    this.#rcpts = [];
    if (this.state === "mail" || this.state === "rcpt") this.state = "ready";
  }

  // ---- command handlers (called through HANDLERS) -----------------------------------

  /** @internal EHLO / HELO */
  hello(cmd: Command & { verb: "EHLO" | "HELO" }): Step {
    const domain = cmd.domain;
    if (cmd.verb === "HELO") {
      if (this.#services.engine.hasHandler("smtp_server_ehlo")) return this.#heloWithPolicy(domain);
      return this.#heloReply(domain);
    }
    const ext = [
      "PIPELINING",
      "ENHANCEDSTATUSCODES",
      "8BITMIME",
      "SMTPUTF8",
      this.#tls === null ? "STARTTLS" : `AUTH ${AUTH_MECHANISMS.join(" ")}`,
    ];
    if (this.#params.allowXclient) ext.push("XCLIENT ADDR PORT DESTADDR DESTPORT");
    if (this.#services.engine.hasHandler("smtp_server_ehlo")) {
      return this.#ehloWithPolicy(domain, ext);
    }
    return this.#ehloReply(domain, ext);
  }

  async #heloWithPolicy(domain: string): Promise<void> {
    await this.#services.engine.callOrThrow("smtp_server_ehlo", "sc", [domain, this.#conn]);
    await this.#heloReply(domain);
  }

  #heloReply(domain: string): Step {
    this.#setEhlo(domain);
    return this.#reply(250, `Hello ${domain}!`);
  }

  /** `smtp_server_ehlo` may reject, or return the extension list to advertise. */
  async #ehloWithPolicy(domain: string, ext: string[]): Promise<void> {
    const engine = this.#services.engine;
    const v = await engine.callOrThrow("smtp_server_ehlo", "scx", [domain, this.#conn, ext]);
    await this.#ehloReply(domain, Array.isArray(v) ? v.map(String) : ext);
  }

  #ehloReply(domain: string, ext: readonly string[]): Step {
    this.#setEhlo(domain);
    return this.#reply(250, [`${this.hostname} Aloha ${domain}`, ...ext].join("\n"));
  }

  #setEhlo(domain: string): void {
    this.#ehlo = domain;
    this.#log.ehlo = domain;
    this.#conn.set("ehlo_domain", domain);
    this.#resetTransaction();
  }

  /** @internal MAIL FROM */
  mail(cmd: Command & { verb: "MAIL" }): Step {
    if (this.#sender !== null) {
      return this.#reply(503, "5.5.0 MAIL FROM already issued; you must RSET first");
    }
    const engine = this.#services.engine;
    if (engine.hasHandler("smtp_server_mail_from")) {
      return engine.callOrThrow("smtp_server_mail_from", "ac", [cmd.address, this.#conn])
        .then(() => this.#mailAccepted(cmd.address));
    }
    return this.#mailAccepted(cmd.address);
  }

  #mailAccepted(address: EnvelopeAddress): Step {
    this.#sender = address;
    this.state = "mail";
    this.#txnStart = performance.now(); // [metrics] smtpsrv_transaction_duration
    return this.#reply(250, `OK <${formatEnvelopeAddress(address)}>`);
  }

  /** @internal RCPT TO */
  rcpt(cmd: Command & { verb: "RCPT" }): Step {
    const sender = this.#sender;
    if (sender === null) return this.#reply(503, "5.5.0 MAIL FROM must be issued first");
    const p = this.#params;
    if (this.#rcpts.length >= p.maxRecipientsPerMessage) {
      return this.#reply(452, "4.5.3 too many recipients");
    }
    if (this.#rcptCount >= p.maxMessagesPerConnection) {
      if (this.#rcpts.length === 0) {
        return this.#reply(
          421,
          `4.5.3 ${this.hostname} too many recipients on this connection`,
        );
      }
      return this.#reply(452, "4.5.3 too many recipients on this connection");
    }
    const v = decideRelay(
      p.relayHosts,
      this.#ends.peerIp,
      sender.domain,
      cmd.address.domain,
      this.#relayCache,
    );
    if (v instanceof Promise) return v.then((v) => this.#rcptDecided(cmd.address, v));
    return this.#rcptDecided(cmd.address, v);
  }

  #rcptDecided(address: EnvelopeAddress, v: RelayVerdict): Step {
    if (!v.relay && !v.reportDomain) {
      return this.#reply(
        550,
        `5.7.1 relaying not permitted for ${this.#conn.values.received_from}`,
      );
    }
    const engine = this.#services.engine;
    if (engine.hasHandler("smtp_server_rcpt_to")) {
      return engine.callOrThrow("smtp_server_rcpt_to", "ac", [address, this.#conn])
        .then(() => this.#rcptAccepted(address));
    }
    return this.#rcptAccepted(address);
  }

  #rcptAccepted(address: EnvelopeAddress): Step {
    this.#rcpts.push(address);
    this.#rcptCount++;
    this.state = "rcpt";
    return this.#reply(250, `OK <${formatEnvelopeAddress(address)}>`);
  }

  /** @internal DATA */
  data(): Step {
    if (this.#sender === null) {
      return this.#reply(503, "5.5.0 MAIL FROM must be issued first");
    }
    if (this.#rcpts.length === 0) {
      return this.#reply(503, "5.5.0 RCPT TO must be issued first");
    }
    const step = this.#reply(354, "Send body; end with CRLF.CRLF");
    if (step !== undefined) return step.then(() => this.#startData());
    this.#startData();
  }

  #startData(): void {
    this.state = "data";
    this.#dataStart = performance.now(); // [metrics] smtpsrv_read_data_duration
    this.#reader.startData();
  }

  /** [metrics] When the transaction's MAIL FROM and its DATA (354) began. */
  #txnStart = 0;
  #dataStart = 0;

  async #endOfData(ev: ReaderEvent & { kind: "data" }): Promise<void> {
    // The transaction stays visible until its reply is written (Rejection
    // records of end-of-data replies carry sender and last recipient).
    this.state = "ready";
    try {
      if (ev.problem === "too_long") return await this.#reply(500, "5.2.3 line too long");
      if (ev.problem === "too_big") return await this.#reply(552, "5.3.4 message too big");
      if (ev.problem === "bad_line_endings") {
        return await this.#reply(552, "5.6.0 message data must use CRLF for line endings");
      }
      this.#log.ehlo = this.#ehlo;
      const processStart = performance.now(); // [metrics]
      observeSmtpsrv("read_data", (processStart - this.#dataStart) / 1000);
      const r = await runDataPhase({
        services: this.#services,
        params: this.#params,
        conn: this.#conn,
        sender: this.#sender!,
        recipients: this.#rcpts,
        body: ev.body,
        log: this.#log,
        peerIp: this.#ends.peerIp,
        localIp: this.#ends.localIp,
        tlsVersion: this.#tls?.version,
        tlsCipher: this.#tls?.cipher,
        authenticated: this.#authenticated,
        relayCache: this.#relayCache,
      });
      await this.#reply(r.code, r.text);
      const done = performance.now(); // [metrics]
      observeSmtpsrv("process_data", (done - processStart) / 1000);
      observeSmtpsrv("transaction", (done - this.#txnStart) / 1000);
    } catch (e) {
      if (e instanceof PolicyReject) await this.#policyReject(e);
      else throw e;
    } finally {
      this.#sender = null;
      this.#rcpts = [];
    }
  }

  /** @internal RSET */
  rset(): Step {
    this.#resetTransaction();
    return this.#reply(250, "Reset state");
  }

  /** @internal NOOP */
  noop(): Step {
    return this.#reply(250, "the goggles do nothing");
  }

  /** @internal QUIT */
  quit(): Step {
    const step = this.#reply(221, "So long, and thanks for all the fish!");
    if (step !== undefined) return step.then(() => this.#close());
    this.#close();
  }

  /** @internal unknown and unimplemented verbs */
  unimplemented(): Step {
    return this.#reply(502, "5.5.1 Command unimplemented");
  }

  /**
   * @internal XCLIENT ADDR PORT DESTADDR DESTPORT (Postfix XCLIENT_README):
   * the session continues as if the client had connected from ADDR:PORT to
   * DESTADDR:DESTPORT — params, conn meta and relay checks are re-resolved,
   * EHLO is forgotten and the banner is sent again.
   */
  async xclient(cmd: Command & { verb: "XCLIENT" }): Promise<void> {
    if (!this.#params.allowXclient) return await this.#reply(550, "insufficient authorization");
    if (this.#sender !== null) return await this.#reply(503, "mail transaction in progress");
    const ends = { ...this.#ends };
    for (const [name, raw] of cmd.attributes) {
      const value = raw.toUpperCase() === "[UNAVAILABLE]" || raw.toUpperCase() === "[TEMPUNAVAIL]"
        ? null
        : raw;
      switch (name) {
        case "ADDR":
        case "DESTADDR": {
          if (value === null) break;
          const ip = value.replace(/^IPV6:/i, "").toLowerCase();
          if (!isIP(ip)) return await this.#reply(501, `5.5.4 Bad XCLIENT ${name} value: ${raw}`);
          if (name === "ADDR") ends.peerIp = ip;
          else ends.localIp = ip;
          break;
        }
        case "PORT":
        case "DESTPORT": {
          if (value === null) break;
          const port = Number(value);
          if (!/^[0-9]{1,5}$/.test(value) || port > 65535) {
            return await this.#reply(501, `5.5.4 Bad XCLIENT ${name} value: ${raw}`);
          }
          if (name === "PORT") ends.peerPort = port;
          else ends.localPort = port;
          break;
        }
        default:
          return await this.#reply(501, `5.5.4 Bad XCLIENT attribute name: ${name}`);
      }
    }
    this.#rebind(ends);
    await this.#dynamicParams();
    this.#ehlo = "";
    this.#log.ehlo = "";
    this.#conn.set("ehlo_domain", null);
    this.#resetTransaction();
    await this.#reply(220, `${this.hostname} ${this.#params.banner}`);
  }

  /** @internal STARTTLS (RFC 3207) */
  async starttls(): Promise<void> {
    if (this.#tls !== null) {
      return await this.#reply(501, "Cannot STARTTLS as TLS is already active");
    }
    let material;
    try {
      material = await serverTls(this.#params);
    } catch (e) {
      diag.error("kumod::smtp_server", `Cannot load TLS material: ${(e as Error).message}`);
      return await this.#reply(454, "4.7.0 TLS not available");
    }
    await this.#reply(220, "Ready to Start TLS");
    this.#flush();
    const raw = this.#socket;
    raw.off("data", this.#onData);
    this.#reader.takeBuffered(); // RFC 3207 §4.2: discard what came before the handshake
    try {
      const up = await upgradeToTls(
        raw,
        material.context,
        this.#params.clientTimeout,
        material.clientCas !== null,
      );
      this.#socket = up.socket;
      this.#tls = { version: up.protocolVersion, cipher: up.cipher };
      // tls_required_client_ca: only a certificate issued by one of the CAs counts.
      if (material.clientCas !== null) {
        const subject = verifiedPeerSubject(up.peerCertificate, material.clientCas);
        if (subject !== null) {
          this.#conn.set("tls_peer_subject_name", subject);
          this.#log.tlsPeerSubjectName = subject;
        }
      }
    } catch (e) {
      diag.info("kumod::smtp_server", `STARTTLS handshake failed: ${(e as Error).message}`);
      this.state = "closed";
      raw.destroy();
      return;
    }
    this.#socket.on("close", () => this.#onClose());
    this.#socket.on("error", () => {});
    this.#conn.set("tls_cipher", this.#tls.cipher);
    this.#conn.set("tls_protocol_version", this.#tls.version);
    this.#log.tlsCipher = this.#tls.cipher;
    this.#log.tlsProtocolVersion = this.#tls.version;
    // RFC 3207 §4.2: forget everything learned before TLS.
    this.#ehlo = "";
    this.#log.ehlo = "";
    this.#conn.set("ehlo_domain", null);
    this.#resetTransaction();
    this.#lastRead = Date.now();
    this.#attach(this.#socket);
  }

  /** @internal AUTH PLAIN / AUTH LOGIN (RFC 4954) */
  async auth(cmd: Command & { verb: "AUTH" }): Promise<void> {
    const mech = cmd.mechanism;
    if (this.#tls === null) return await this.#replyOf(needTls(mech));
    if (this.#authenticated) return await this.#replyOf(AUTH_REPLIES.twice);
    if (this.#sender !== null) return await this.#replyOf(AUTH_REPLIES.inTransaction);
    if (mech !== "PLAIN" && mech !== "LOGIN") {
      return await this.#replyOf(unsupportedMechanism(mech));
    }
    if (mech === "LOGIN") {
      if (cmd.initialResponse === undefined) {
        this.#authStep = { step: "login_user" };
        this.state = "auth";
        return await this.#replyOf(AUTH_REPLIES.loginUsername);
      }
      return await this.#loginUser(cmd.initialResponse);
    }
    if (cmd.initialResponse === undefined) {
      this.#authStep = { step: "plain" };
      this.state = "auth";
      return await this.#reply(334, "");
    }
    await this.#authPlain(cmd.initialResponse);
  }

  /** A line answering a `334` continuation. */
  async #authResponse(line: string): Promise<void> {
    this.state = "ready";
    const step = this.#authStep;
    this.#authStep = null;
    if (line === "*") return await this.#replyOf(AUTH_REPLIES.cancelled);
    try {
      if (step?.step === "login_user") return await this.#loginUser(line);
      if (step?.step === "login_password") return await this.#loginPassword(step.user, line);
      await this.#authPlain(line);
    } catch (e) {
      if (e instanceof PolicyReject) return await this.#policyReject(e);
      throw e;
    }
  }

  /** AUTH LOGIN: the username arrived; ask for the password. */
  async #loginUser(b64: string): Promise<void> {
    const user = decodeLoginField(b64, "username");
    if (typeof user === "string") return await this.#replyOf(AUTH_REPLIES[user]);
    this.#authStep = { step: "login_password", user: user.value };
    this.state = "auth";
    await this.#replyOf(AUTH_REPLIES.loginPassword);
  }

  /** AUTH LOGIN: the password arrived; same decision as PLAIN with an empty authz. */
  async #loginPassword(user: string, b64: string): Promise<void> {
    const pw = decodeLoginField(b64, "password");
    if (typeof pw === "string") return await this.#replyOf(AUTH_REPLIES[pw]);
    await this.#authenticate({ authz: user, authc: user, password: pw.value });
  }

  async #authPlain(b64: string): Promise<void> {
    const creds = decodePlain(b64);
    if (typeof creds === "string") return await this.#replyOf(AUTH_REPLIES[creds]);
    await this.#authenticate(creds);
  }

  /** `smtp_server_auth_plain` decides (PLAIN and LOGIN alike). */
  async #authenticate(creds: PlainCredentials): Promise<void> {
    const engine = this.#services.engine;
    let ok = false;
    let info: unknown;
    if (engine.hasHandler("smtp_server_auth_plain")) {
      const v = await engine.callOrThrow("smtp_server_auth_plain", "sssc", [
        creds.authz,
        creds.authc,
        creds.password,
        this.#conn,
      ]);
      let verdict;
      try {
        verdict = authVerdict(v);
      } catch (e) {
        throw new PolicyError((e as Error).message);
      }
      ok = verdict.ok;
      if (verdict.ok) info = verdict.authInfo;
    }
    if (!ok) return await this.#replyOf(AUTH_REPLIES.invalid);
    this.#authenticated = true;
    this.#conn.authInfo = info ?? {
      identities: [{ identity: creds.authz, context: "SmtpAuthPlainAuthorization" }, {
        identity: creds.authc,
        context: "SmtpAuthPlainAuthentication",
      }],
      groups: [],
    };
    this.#conn.set("authz_id", creds.authz);
    this.#conn.set("authn_id", creds.authc);
    await this.#replyOf(AUTH_REPLIES.ok);
  }

  #replyOf(r: { code: number; text: string }): Step {
    return this.#reply(r.code, r.text);
  }
}

function replyText(
  r: { enhanced?: { class: number; subject: number; detail: number }; text: string },
): string {
  return r.enhanced
    ? `${r.enhanced.class}.${r.enhanced.subject}.${r.enhanced.detail} ${r.text}`
    : r.text;
}

/** `AUTH PLAIN <secret>` → `AUTH PLAIN` (command lines end up in Rejection records). */
function redactAuth(line: string): string {
  if (line.length < 5 || line.slice(0, 5).toUpperCase() !== "AUTH ") return line;
  const parts = line.split(" ").filter((p) => p !== "");
  return parts.slice(0, 2).join(" ");
}

const notImplemented: Handler = (s) => s.unimplemented();

/** The protocol as data: verb → handler. */
const HANDLERS: Partial<Record<Command["verb"], Handler>> = {
  EHLO: (s, c) => s.hello(c as Command & { verb: "EHLO" }),
  HELO: (s, c) => s.hello(c as Command & { verb: "HELO" }),
  MAIL: (s, c) => s.mail(c as Command & { verb: "MAIL" }),
  RCPT: (s, c) => s.rcpt(c as Command & { verb: "RCPT" }),
  DATA: (s) => s.data(),
  RSET: (s) => s.rset(),
  NOOP: (s) => s.noop(),
  QUIT: (s) => s.quit(),
  STARTTLS: (s) => s.starttls(),
  AUTH: (s, c) => s.auth(c as Command & { verb: "AUTH" }),
  XCLIENT: (s, c) => s.xclient(c as Command & { verb: "XCLIENT" }),
  LHLO: notImplemented,
  VRFY: notImplemented,
  EXPN: notImplemented,
  HELP: notImplemented,
  Unknown: notImplemented,
};
