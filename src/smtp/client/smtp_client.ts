/**
 * One outbound SMTP session (queues-and-delivery §5.1–§5.2).
 *
 * Place on the path: the last hop. A ready-queue dispatcher hands over a
 * plain plan (one target address, source address, EHLO name, TLS mode,
 * timeouts) and then messages; each `send` returns one reply per recipient.
 * It never decides outcomes (Delivery/Bounce…), never logs and never
 * touches the queue: callers map replies with `classifyReply`.
 *
 * Wire habits: TCP_NODELAY; MAIL+RCPT…+DATA in one write when the server
 * offers PIPELINING; the dot-stuffed body and its terminator in one write.
 *
 * @module
 */

import net from "node:net";
import tls from "node:tls";
import { type EnhancedCode, ReplyParser, type SmtpReply } from "../protocol/reply.ts";
import { dotStuff } from "../protocol/dot_stuff.ts";
import { encodeProxyV2 } from "./ha_proxy.ts";

/** `enable_tls` values. */
export type TlsMode =
  | "Opportunistic"
  | "OpportunisticInsecure"
  | "Required"
  | "RequiredInsecure"
  | "Disabled";

/** Per-step timeouts, ms. */
export interface ClientTimeouts {
  connect: number;
  banner: number;
  ehlo: number;
  starttls: number;
  mailFrom: number;
  rcptTo: number;
  data: number;
  dataDot: number;
  rset: number;
  idle: number;
}

/** Everything one session needs: a plain plan, no policy. */
export interface SmtpClientPlan {
  /** MX host name (as resolved, trailing dot) or literal IP. */
  name: string;
  addr: string;
  port: number;
  /** Local address to bind (`source_address`). */
  sourceAddress?: string;
  /** Connect via HAProxy: proxy `host:port` and the address it should use. */
  haProxy?: { server: string; sourceAddress: string };
  ehloDomain: string;
  enableTls: TlsMode;
  enablePipelining: boolean;
  enableRset: boolean;
  ignore8bit: boolean;
  timeouts: ClientTimeouts;
  /** Client `AUTH PLAIN` after EHLO/STARTTLS (§5.1 step 6). */
  auth?: {
    username: string;
    password: string;
    allowWithoutTls: boolean;
    allowWithoutValidCertificate: boolean;
  };
  /** Response timeout of AUTH, ms. @default 60_000 */
  authTimeout?: number;
  /**
   * Speak LMTP (RFC 2033, `use_lmtp`): `LHLO` instead of `EHLO`, and one
   * reply per accepted recipient after the final dot. @default false
   */
  lmtp?: boolean;
  /** Client certificate and key (PEM) offered in the STARTTLS handshake. */
  clientCertificate?: { cert: string; key: string };
}

/** A reply (or an internal stand-in) for one recipient. */
export interface ClientResponse {
  code: number;
  enhanced: EnhancedCode | null;
  /** Text without code and enhanced code; lines joined by `\n`. */
  text: string;
  /** Command line answered, with CRLF; null for internal responses. */
  command: string | null;
}

/** An envelope + body to send. */
export interface OutboundMessage {
  sender: string;
  recipients: readonly string[];
  data: Uint8Array;
}

/** A failure before the session was usable (steps 2–6 of §5.1). */
export class ConnectError extends Error {
  /** The TLS handshake itself failed (not a refusal or a missing STARTTLS). */
  tlsHandshakeFailed = false;
}

/** The connection broke (I/O error, timeout, 421) while sending. */
export class TransportError extends Error {
  /** True when it was a response timeout. */
  readonly timedOut: boolean;
  constructor(message: string, timedOut = false) {
    super(message);
    this.timedOut = timedOut;
  }
}

const DEFAULT_TIMEOUTS: ClientTimeouts = {
  connect: 60_000,
  banner: 60_000,
  ehlo: 300_000,
  starttls: 5_000,
  mailFrom: 300_000,
  rcptTo: 300_000,
  data: 300_000,
  dataDot: 300_000,
  rset: 5_000,
  idle: 5_000,
};

/** The upstream default timeouts (make_egress_path). */
export function defaultTimeouts(): ClientTimeouts {
  return { ...DEFAULT_TIMEOUTS };
}

function has8bit(data: Uint8Array): boolean {
  for (let i = 0; i < data.length; i++) if (data[i] >= 0x80) return true;
  return false;
}

// deno-lint-ignore no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

function toResponse(r: SmtpReply, command: string | null): ClientResponse {
  return { code: r.code, enhanced: r.enhanced ?? null, text: r.text, command };
}

/** An internal response, e.g. `internalResponse(554, "5.6.3 ...")`. */
export function internalResponse(code: number, text: string): ClientResponse {
  const m = /^([245])\.(\d{1,3})\.(\d{1,3}) /.exec(text);
  return {
    code,
    enhanced: m ? { class: Number(m[1]), subject: Number(m[2]), detail: Number(m[3]) } : null,
    text: m ? text.slice(m[0].length) : text,
    command: null,
  };
}

/**
 * A connected, greeted SMTP session.
 *
 * @example
 * ```ts
 * const c = await SmtpClient.connect(plan);
 * const perRcpt = await c.send({ sender: "a@x.test", recipients: ["b@y.test"], data });
 * await c.quit();
 * ```
 */
export class SmtpClient {
  readonly plan: SmtpClientPlan;
  #sock: net.Socket | tls.TLSSocket;
  #parser = new ReplyParser();
  #replies: SmtpReply[] = [];
  #waiter: ((r: SmtpReply | Error) => void) | null = null;
  #error: Error | null = null;
  #extensions = new Map<string, string>();
  #transactions = 0;
  #lastFailed = false;
  /** Local `ip:port` as bound. */
  localAddress = "";
  /** TLS details once STARTTLS succeeded. */
  tlsInfo: { cipher: string; protocol: string; peerSubject?: string[] } | null = null;
  /** Whether the peer certificate validated (false for insecure modes that did not). */
  tlsValid = false;
  /** Messages sent on this connection. */
  delivered = 0;

  private constructor(plan: SmtpClientPlan, sock: net.Socket) {
    this.plan = plan;
    this.#sock = sock;
    this.#attach(sock);
  }

  /** True once the connection is unusable. */
  get closed(): boolean {
    return this.#error !== null;
  }

  /** Extensions advertised in the last EHLO reply (upper-case keyword → params). */
  get extensions(): ReadonlyMap<string, string> {
    return this.#extensions;
  }

  /**
   * Connect, read the banner, EHLO, STARTTLS per `enableTls`.
   * @throws {ConnectError} on any failure; the socket is closed.
   */
  static async connect(plan: SmtpClientPlan): Promise<SmtpClient> {
    const t = plan.timeouts;
    let host = plan.addr, port = plan.port;
    if (plan.haProxy) {
      const i = plan.haProxy.server.lastIndexOf(":");
      host = plan.haProxy.server.slice(0, i).replace(/^\[|\]$/g, "");
      port = Number(plan.haProxy.server.slice(i + 1));
    }
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host, port, localAddress: plan.sourceAddress });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new ConnectError(`Cannot connect to ${plan.addr}:${plan.port}: connect timed out`));
      }, t.connect);
      s.once("connect", () => {
        clearTimeout(timer);
        s.removeAllListeners("error");
        resolve(s);
      });
      s.once("error", (e) => {
        clearTimeout(timer);
        s.destroy();
        reject(new ConnectError(`Cannot connect to ${plan.addr}:${plan.port}: ${e.message}`));
      });
    });
    sock.setNoDelay(true);
    const client = new SmtpClient(plan, sock);
    // A socket address as upstream prints it: IPv6 in brackets (`[::1]:40122`).
    const local = sock.localAddress ?? "";
    client.localAddress = `${local.includes(":") ? `[${local}]` : local}:${sock.localPort}`;
    try {
      if (plan.haProxy) {
        sock.write(encodeProxyV2(
          { address: plan.haProxy.sourceAddress, port: 0 },
          { address: plan.addr, port: plan.port },
        ));
      }
      const banner = await client.#read(t.banner, "banner");
      if (banner.code !== 220) {
        throw new ConnectError(
          `Unexpected banner from ${plan.addr}: ${banner.code} ${banner.text}`,
        );
      }
      await client.#ehlo();
      await client.#maybeStartTls();
      if (plan.auth) await client.#authPlain(plan.auth);
      return client;
    } catch (e) {
      client.close();
      if (e instanceof ConnectError) throw e;
      throw new ConnectError(`Cannot set up session with ${plan.addr}: ${(e as Error).message}`);
    }
  }

  #attach(sock: net.Socket | tls.TLSSocket): void {
    sock.on("data", (chunk: Uint8Array) => {
      let got: SmtpReply[];
      try {
        got = this.#parser.feed(chunk);
      } catch (e) {
        this.#fail(e as Error);
        return;
      }
      for (const r of got) {
        if (this.#waiter) {
          const w = this.#waiter;
          this.#waiter = null;
          w(r);
        } else this.#replies.push(r);
      }
    });
    sock.on("error", (e: Error) => this.#fail(e));
    sock.on("close", () => this.#fail(new Error("connection closed by peer")));
  }

  #detach(sock: net.Socket | tls.TLSSocket): void {
    sock.removeAllListeners("data");
    sock.removeAllListeners("error");
    sock.removeAllListeners("close");
  }

  #fail(e: Error): void {
    if (this.#error === null) this.#error = e;
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = null;
      w(this.#error);
    }
  }

  #read(timeoutMs: number, what: string): Promise<SmtpReply> {
    const queued = this.#replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#error) return Promise.reject(new TransportError(this.#error.message));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = null;
        const err = new TransportError(`Timed Out waiting for ${what} response`, true);
        this.#error ??= err;
        this.#sock.destroy();
        reject(err);
      }, timeoutMs);
      this.#waiter = (r) => {
        clearTimeout(timer);
        if (r instanceof Error) reject(new TransportError(r.message));
        else resolve(r);
      };
    });
  }

  #write(data: string | Uint8Array): void {
    if (this.#error) throw new TransportError(this.#error.message);
    this.#sock.write(data);
  }

  async #ehlo(): Promise<void> {
    const verb = this.plan.lmtp ? "LHLO" : "EHLO";
    this.#write(`${verb} ${this.plan.ehloDomain}\r\n`);
    const r = await this.#read(this.plan.timeouts.ehlo, verb);
    if (r.code !== 250) {
      throw new ConnectError(`${verb} rejected by ${this.plan.addr}: ${r.code} ${r.text}`);
    }
    this.#extensions.clear();
    const lines = r.text.split("\n");
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i].trim();
      const sp = line.indexOf(" ");
      const kw = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
      this.#extensions.set(kw, sp < 0 ? "" : line.slice(sp + 1));
    }
  }

  async #maybeStartTls(): Promise<void> {
    const mode = this.plan.enableTls;
    if (mode === "Disabled") return;
    const offered = this.#extensions.has("STARTTLS");
    const required = mode === "Required" || mode === "RequiredInsecure";
    if (!offered) {
      if (required) {
        throw new ConnectError(`STARTTLS required but not offered by ${this.plan.addr}`);
      }
      return;
    }
    const insecure = mode === "OpportunisticInsecure" || mode === "RequiredInsecure";
    this.#write("STARTTLS\r\n");
    const r = await this.#read(this.plan.timeouts.starttls, "STARTTLS");
    if (r.code !== 220) {
      if (mode === "OpportunisticInsecure") return;
      throw new ConnectError(`STARTTLS refused by ${this.plan.addr}: ${r.code} ${r.text}`);
    }
    const plain = this.#sock as net.Socket;
    this.#detach(plain);
    const servername = this.plan.name.replace(/\.$/, "");
    const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({
        socket: plain,
        servername: net.isIP(servername) ? undefined : servername,
        rejectUnauthorized: !insecure,
        ...this.plan.clientCertificate, // tls_certificate / tls_private_key
      });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new ConnectError(`TLS handshake with ${this.plan.addr} timed out`));
      }, this.plan.timeouts.starttls);
      s.once("secureConnect", () => {
        clearTimeout(timer);
        s.removeAllListeners("error");
        resolve(s);
      });
      s.once("error", (e) => {
        clearTimeout(timer);
        s.destroy();
        const err = new ConnectError(`TLS handshake with ${this.plan.addr} failed: ${e.message}`);
        err.tlsHandshakeFailed = true;
        reject(err);
      });
    });
    secure.setNoDelay(true);
    this.tlsValid = secure.authorized;
    this.#sock = secure;
    this.#parser = new ReplyParser();
    this.#attach(secure);
    const cipher = secure.getCipher();
    const cert = secure.getPeerCertificate();
    this.tlsInfo = {
      cipher: cipher?.standardName ?? cipher?.name ?? "",
      protocol: secure.getProtocol() ?? "",
      peerSubject: cert?.subject
        ? Object.entries(cert.subject).map(([k, v]) => `${k}=${v}`)
        : undefined,
    };
    await this.#ehlo();
  }

  async #authPlain(auth: NonNullable<SmtpClientPlan["auth"]>): Promise<void> {
    if (!this.tlsInfo && !auth.allowWithoutTls) {
      throw new ConnectError(
        `Cannot AUTH PLAIN to ${this.plan.addr}: the connection is not protected by TLS`,
      );
    }
    if (this.tlsInfo && !this.tlsValid && !auth.allowWithoutValidCertificate) {
      throw new ConnectError(
        `Cannot AUTH PLAIN to ${this.plan.addr}: the certificate of the server is not valid`,
      );
    }
    const token = btoa(
      String.fromCharCode(...new TextEncoder().encode(`\0${auth.username}\0${auth.password}`)),
    );
    this.#write(`AUTH PLAIN ${token}\r\n`);
    const r = await this.#read(this.plan.authTimeout ?? 60_000, "AUTH");
    if (r.code !== 235) {
      throw new ConnectError(`AUTH PLAIN rejected by ${this.plan.addr}: ${r.code} ${r.text}`);
    }
  }

  /**
   * Send one message (in batches of `maxRecipientsPerBatch`); one response
   * per recipient, in order.
   * @throws {TransportError} when the connection broke; it is then closed.
   */
  async send(msg: OutboundMessage, maxRecipientsPerBatch = 100): Promise<ClientResponse[]> {
    const out: ClientResponse[] = new Array(msg.recipients.length);
    // Indices still to send; "too many recipients" replies put theirs back
    // for an immediate new transaction on this connection (§5.3).
    let todo = msg.recipients.map((_, i) => i);
    for (let round = 0; todo.length > 0 && round < msg.recipients.length + 1; round++) {
      const again: number[] = [];
      for (let i = 0; i < todo.length; i += maxRecipientsPerBatch) {
        const idx = todo.slice(i, i + maxRecipientsPerBatch);
        const replies = await this.#transaction(
          msg.sender,
          idx.map((j) => msg.recipients[j]),
          msg.data,
        );
        for (let k = 0; k < idx.length; k++) {
          if (k > 0 && isTooManyRecipients(replies[k]) && !this.closed) again.push(idx[k]);
          else out[idx[k]] = replies[k];
        }
      }
      todo = again;
    }
    this.delivered++;
    return out;
  }

  async #transaction(
    sender: string,
    rcpts: readonly string[],
    data: Uint8Array,
  ): Promise<ClientResponse[]> {
    const t = this.plan.timeouts;
    const ext = this.#extensions;
    let params = "";
    if (!this.plan.ignore8bit && has8bit(data)) {
      if (!ext.has("8BITMIME")) {
        return rcpts.map(() =>
          internalResponse(
            554,
            "5.6.3 KumoMTA internal: DATA is 8bit, destination does not support 8BITMIME. Conversion via msg:check_fix_conformance during reception is required",
          )
        );
      }
      params += " BODY=8BITMIME";
    } else if (this.plan.ignore8bit && has8bit(data) && ext.has("8BITMIME")) {
      params += " BODY=8BITMIME";
    }
    if (NON_ASCII.test(sender) || rcpts.some((r) => NON_ASCII.test(r))) {
      if (!ext.has("SMTPUTF8")) {
        return rcpts.map(() =>
          internalResponse(
            554,
            "5.6.7 KumoMTA internal: SMTPUTF8 is required but the destination does not support it",
          )
        );
      }
      params += " SMTPUTF8";
    }

    const rset = this.#transactions > 0 && (this.#lastFailed || this.plan.enableRset);
    const pipelining = this.plan.enablePipelining && ext.has("PIPELINING");
    if (rset && !pipelining) {
      this.#write("RSET\r\n");
      const r = await this.#read(t.rset, "RSET");
      if (r.code !== 250) throw new TransportError(`RSET failed: ${r.code} ${r.text}`);
    }
    this.#transactions++;
    this.#lastFailed = true;

    const mailCmd = `MAIL FROM:<${sender}>${params}\r\n`;
    const rcptCmds = rcpts.map((r) => `RCPT TO:<${r}>\r\n`);
    let mail: SmtpReply;
    const rcptReplies: SmtpReply[] = [];
    let dataReply: SmtpReply | null = null;
    if (pipelining) {
      // RSET may lead a pipelined group (RFC 2920 §3.1): one write, one round trip.
      this.#write((rset ? "RSET\r\n" : "") + mailCmd + rcptCmds.join("") + "DATA\r\n");
      if (rset) {
        const r = await this.#read(t.rset, "RSET");
        if (r.code !== 250) {
          this.#error ??= new Error(`RSET failed: ${r.code} ${r.text}`);
          this.#sock.destroy();
          throw new TransportError(`RSET failed: ${r.code} ${r.text}`);
        }
      }
      mail = await this.#read(t.mailFrom, "MAIL FROM");
      for (let i = 0; i < rcpts.length; i++) {
        rcptReplies.push(await this.#read(t.rcptTo, "RCPT TO"));
      }
      dataReply = await this.#read(t.data, "DATA");
    } else {
      this.#write(mailCmd);
      mail = await this.#read(t.mailFrom, "MAIL FROM");
      if (mail.code === 250) {
        for (const c of rcptCmds) {
          this.#write(c);
          rcptReplies.push(await this.#read(t.rcptTo, "RCPT TO"));
        }
        if (rcptReplies.some((r) => r.code >= 200 && r.code < 300)) {
          this.#write("DATA\r\n");
          dataReply = await this.#read(t.data, "DATA");
        }
      }
    }
    const mailOk = mail.code >= 200 && mail.code < 300;
    const anyRcptOk = rcptReplies.some((r) => r.code >= 200 && r.code < 300);
    if (!mailOk || !anyRcptOk) {
      if (dataReply?.code === 354) {
        this.#write(".\r\n");
        await this.#read(t.dataDot, "data dot");
      }
      this.#checkFatal(mail);
      if (!mailOk) return rcpts.map(() => toResponse(mail, mailCmd));
      return rcptReplies.map((r, i) => toResponse(r, rcptCmds[i]));
    }
    if (dataReply === null || dataReply.code !== 354) {
      const d = dataReply!;
      this.#checkFatal(d);
      return rcptReplies.map((r, i) =>
        r.code >= 200 && r.code < 300 ? toResponse(d, "DATA\r\n") : toResponse(r, rcptCmds[i])
      );
    }
    this.#write(dotStuff(data));
    if (this.plan.lmtp) {
      // RFC 2033 §4.2: one reply per recipient whose RCPT succeeded, in RCPT order.
      const out: ClientResponse[] = [];
      let fatal: SmtpReply | null = null; // after a 421 the rest share it
      for (let i = 0; i < rcptReplies.length; i++) {
        const r = rcptReplies[i];
        if (r.code < 200 || r.code >= 300) {
          out.push(toResponse(r, rcptCmds[i]));
          continue;
        }
        const fin: SmtpReply = fatal ?? await this.#read(t.dataDot, "data dot");
        this.#checkFatal(fin);
        if (fin.code === 421) fatal = fin;
        if (fin.code >= 200 && fin.code < 300) this.#lastFailed = false;
        out.push(toResponse(fin, ".\r\n"));
      }
      return out;
    }
    const fin = await this.#read(t.dataDot, "data dot");
    this.#checkFatal(fin);
    if (fin.code >= 200 && fin.code < 300) this.#lastFailed = false;
    return rcptReplies.map((r, i) =>
      r.code >= 200 && r.code < 300 ? toResponse(fin, ".\r\n") : toResponse(r, rcptCmds[i])
    );
  }

  /** A 421 ends the connection (the reply itself is still reported). */
  #checkFatal(r: SmtpReply): void {
    if (r.code === 421) {
      this.#error ??= new Error("server replied 421");
      this.#sock.destroy();
    }
  }

  /** Polite close: QUIT, wait briefly for 221, then close. */
  async quit(): Promise<void> {
    if (!this.#error) {
      try {
        this.#write("QUIT\r\n");
        await this.#read(this.plan.timeouts.idle, "QUIT");
        // Half-close and wait (briefly) for the peer's FIN, so the connection
        // is really gone before a dispatcher opens the next one.
        const sock = this.#sock;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 1000);
          sock.once("close", () => {
            clearTimeout(timer);
            resolve();
          });
          sock.end();
        });
      } catch { /* closing anyway */ }
    }
    this.close();
  }

  /** Close at once. */
  close(): void {
    this.#error ??= new Error("closed");
    this.#detach(this.#sock);
    this.#sock.on("error", () => {});
    this.#sock.destroy();
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = null;
      w(this.#error);
    }
  }
}

/**
 * RCPT reply meaning "too many recipients": 452/552 without an enhanced
 * code, or enhanced 4.5.3 (only for a non-first recipient of a batch).
 */
export function isTooManyRecipients(r: ClientResponse): boolean {
  if (r.command === null || !r.command.startsWith("RCPT")) return false;
  if (r.enhanced) {
    return r.enhanced.class === 4 && r.enhanced.subject === 5 && r.enhanced.detail === 3;
  }
  return r.code === 452 || r.code === 552;
}

/** What a reply means for a recipient (§5.3). */
export type ReplyOutcome = "Delivery" | "TransientFailure" | "Bounce";

/**
 * Map a reply code: 2xx Delivery; 3xx, 4xx and 503 TransientFailure; any
 * other code ≥ 500 Bounce.
 *
 * @example
 * ```ts
 * classifyReply(503); // "TransientFailure"
 * ```
 */
export function classifyReply(code: number): ReplyOutcome {
  if (code >= 200 && code < 300) return "Delivery";
  if (code < 500 || code === 503) return "TransientFailure";
  return "Bounce";
}
