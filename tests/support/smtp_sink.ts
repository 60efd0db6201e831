/**
 * A real SMTP sink for end-to-end tests: listens on one port across several
 * loopback addresses, accepts mail (with PIPELINING and optional STARTTLS),
 * records every message and connection, and can be told to answer any stage
 * with a 4xx/5xx.
 *
 * It plays the remote MX at the far end of the delivery path, so tests can
 * assert what kumo-edge actually put on the wire: envelope, dot-unstuffed
 * body, TLS, which local address it came from and how many connections it
 * held at once. It never relays anything anywhere.
 *
 * @module
 */

import net from "node:net";
import tls from "node:tls";
import { Buffer } from "node:buffer";
import { selfSignedPem } from "./self_signed.ts";

/** Points in a session where the `replies` hook may answer instead of the sink. */
export type SinkStage =
  | "connect"
  | "ehlo"
  | "helo"
  | "mail"
  | "rcpt"
  | "data"
  | "message"
  | "rset"
  | "starttls";

/** A reply the hook wants sent. A 421 also closes the connection. */
export interface SinkReply {
  code: number;
  text: string;
}

/** Live state of one session, passed to the `replies` hook. */
export interface SinkSession {
  /** 1-based connection number. */
  readonly id: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  ehlo?: string;
  tls: boolean;
  mailFrom?: string;
  rcptTo: string[];
  /** Messages accepted so far on this connection. */
  messages: number;
}

/** One accepted message. */
export interface SinkMessage {
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  ehlo?: string;
  mailFrom: string;
  /** Accepted recipients only. */
  rcptTo: string[];
  /** Dot-unstuffed content; ends with the last line's CRLF, excludes the `.` CRLF terminator. */
  data: Uint8Array;
  tls: boolean;
  /** `Date.now()` when the final dot arrived. */
  receivedAt: number;
  /** Connection number it arrived on. */
  connectionId: number;
}

/** One accepted TCP connection. */
export interface SinkConnection {
  id: number;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  connectedAt: number;
  closedAt?: number;
  tls: boolean;
  messages: number;
  /**
   * Command verbs (upper-case) grouped by the socket read they arrived in:
   * a pipelined MAIL/RCPT/DATA group shows up as one entry, a client that
   * waits for each reply as one verb per entry. Exact while `delayMs` is 0.
   */
  commands: string[][];
}

/** Options for {@linkcode startSmtpSink}. */
export interface SmtpSinkOptions {
  /** Loopback addresses to listen on, all with the same port. @default ["127.0.0.1"] */
  addresses?: string[];
  /** Port on every address; 0 picks a free one. @default 0 */
  port?: number;
  /** Text of the 220 greeting. @default "sink.test ESMTP test sink" */
  banner?: string;
  /** EHLO extension lines (PIPELINING and STARTTLS are added per their options). @default ["8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "SIZE 104857600"] */
  ehloExtensions?: string[];
  /** Offer STARTTLS with a throwaway self-signed certificate (skipped when `openssl` is missing). @default false */
  starttls?: boolean;
  /** Answer a stage with this reply instead of the default; return undefined for the default. */
  replies?: (stage: SinkStage, arg: string, session: SinkSession) => SinkReply | undefined;
  /** Wait this long before each batch of replies (and the banner). @default 0 */
  delayMs?: number;
  /** Advertise PIPELINING. @default true */
  pipelining?: boolean;
  /**
   * Drop the connection without any reply at this stage (a transport error
   * for the client) when it returns true. Checked before `replies`.
   */
  hangup?: (stage: SinkStage, arg: string, session: SinkSession) => boolean;
}

/** A running sink. */
export interface SmtpSink extends AsyncDisposable {
  readonly port: number;
  readonly addresses: readonly string[];
  /** Accepted messages in arrival order. */
  readonly messages: SinkMessage[];
  /** Every connection in accept order. */
  readonly connections: SinkConnection[];
  /** Connections open right now. */
  readonly concurrent: number;
  /** Highest number of connections open at once. */
  readonly maxConcurrent: number;
  /** Whether STARTTLS is actually offered (requested and `openssl` worked). */
  readonly tlsAvailable: boolean;
  /** Resolve once `n` messages have arrived; reject after `timeoutMs`. */
  waitFor(n: number, timeoutMs?: number): Promise<SinkMessage[]>;
  close(): Promise<void>;
}

const CRLF_DOT_CRLF = Buffer.from("\r\n.\r\n");
const CRLF_DOT = Buffer.from("\r\n.");
const MAX_LINE = 4096;

let credentials: Promise<{ key: string; cert: string } | undefined> | undefined;

/** A self-signed certificate for `localhost`, made once per process (no openssl: no STARTTLS). */
function selfSignedCert(): Promise<{ key: string; cert: string } | undefined> {
  credentials ??= selfSignedPem({
    cn: "localhost",
    extensions: ["subjectAltName=DNS:localhost,IP:127.0.0.1"],
  });
  return credentials;
}

/** Remove the leading dot of every line that starts with one (RFC 5321 §4.5.2). */
function unstuff(raw: Buffer): Uint8Array {
  if (raw[0] !== 0x2e && raw.indexOf(CRLF_DOT) < 0) return new Uint8Array(raw);
  const out = new Uint8Array(raw.length);
  let w = 0;
  let r = raw[0] === 0x2e ? 1 : 0;
  while (r < raw.length) {
    const idx = raw.indexOf(CRLF_DOT, r);
    if (idx < 0) {
      out.set(raw.subarray(r), w);
      w += raw.length - r;
      break;
    }
    out.set(raw.subarray(r, idx + 2), w);
    w += idx + 2 - r;
    r = idx + 3; // skip the stuffed dot
  }
  return out.slice(0, w);
}

function plainAddress(addr: string | undefined): string {
  if (!addr) return "";
  return addr.startsWith("::ffff:") ? addr.slice(7) : addr;
}

/** Extract the path from `FROM:<a@b> PARAMS` / `TO:<a@b>`. */
function pathArg(arg: string): string | undefined {
  const m = /^(?:FROM|TO):\s*<([^>]*)>/i.exec(arg);
  if (m) return m[1];
  const bare = /^(?:FROM|TO):\s*(\S+)/i.exec(arg);
  return bare?.[1];
}

/** Start an SMTP sink on the given loopback addresses. */
export async function startSmtpSink(options: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const addresses = options.addresses ?? ["127.0.0.1"];
  const hostname = "sink.test";
  const bannerText = options.banner ?? `${hostname} ESMTP test sink`;
  const delayMs = options.delayMs ?? 0;
  const hook = options.replies;
  const creds = options.starttls ? await selfSignedCert() : undefined;
  const secureContext = creds ? tls.createSecureContext(creds) : undefined;
  const baseExtensions = options.ehloExtensions ??
    ["8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "SIZE 104857600"];

  const messages: SinkMessage[] = [];
  const connections: SinkConnection[] = [];
  const sockets = new Set<net.Socket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let concurrent = 0;
  let maxConcurrent = 0;
  let closed = false;
  const waiters: { n: number; resolve: (m: SinkMessage[]) => void }[] = [];

  function later(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  }

  function notify(): void {
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (messages.length >= waiters[i].n) {
        waiters[i].resolve(messages.slice());
        waiters.splice(i, 1);
      }
    }
  }

  function handle(raw: net.Socket): void {
    if (closed) {
      raw.destroy();
      return;
    }
    raw.setNoDelay(true);
    sockets.add(raw);
    concurrent++;
    if (concurrent > maxConcurrent) maxConcurrent = concurrent;
    const conn: SinkConnection = {
      id: connections.length + 1,
      localAddress: plainAddress(raw.localAddress),
      localPort: raw.localPort ?? 0,
      remoteAddress: plainAddress(raw.remoteAddress),
      remotePort: raw.remotePort ?? 0,
      connectedAt: Date.now(),
      tls: false,
      messages: 0,
      commands: [],
    };
    connections.push(conn);
    const session: SinkSession = {
      id: conn.id,
      localAddress: conn.localAddress,
      localPort: conn.localPort,
      remoteAddress: conn.remoteAddress,
      remotePort: conn.remotePort,
      tls: false,
      rcptTo: [],
      messages: 0,
    };

    let sock: net.Socket = raw;
    let mode: "command" | "data" | "closing" = "command";
    let refused = false; // banner was a 554: only QUIT is served (RFC 5321 §3.1)
    let input: Buffer = Buffer.alloc(0);
    let dataBuf = Buffer.alloc(0);
    let dataLen = 0;
    let busy = false; // a delayed reply batch is pending
    let out = "";
    let closeAfterFlush = false;
    let upgradeAfterFlush = false;
    let freshRead = true; // the next command starts a new `conn.commands` group

    const reply = (code: number, text: string) => {
      const lines = text.split("\n");
      for (let i = 0; i < lines.length; i++) {
        out += `${code}${i === lines.length - 1 ? " " : "-"}${lines[i]}\r\n`;
      }
      if (code === 421) {
        closeAfterFlush = true;
        mode = "closing";
      }
    };
    /** The hook's reply if it gave one; `true` when that reply was a failure. */
    const hooked = (stage: SinkStage, arg: string): boolean => {
      if (options.hangup?.(stage, arg, session)) {
        mode = "closing";
        out = "";
        sock.destroy();
        return true;
      }
      const r = hook?.(stage, arg, session);
      if (!r) return false;
      reply(r.code, r.text);
      return r.code >= 400;
    };
    const resetTransaction = () => {
      session.mailFrom = undefined;
      session.rcptTo = [];
    };

    const command = (line: string) => {
      const space = line.indexOf(" ");
      const verb = (space < 0 ? line : line.slice(0, space)).toUpperCase();
      const arg = space < 0 ? "" : line.slice(space + 1).trim();
      if (freshRead || conn.commands.length === 0) conn.commands.push([]);
      freshRead = false;
      conn.commands[conn.commands.length - 1].push(verb);
      if (refused && verb !== "QUIT") return reply(503, "5.5.1 No service");
      switch (verb) {
        case "EHLO": {
          resetTransaction();
          if (hooked("ehlo", arg)) return;
          session.ehlo = arg;
          const ext = baseExtensions.slice();
          if ((options.pipelining ?? true) && !ext.includes("PIPELINING")) ext.push("PIPELINING");
          if (secureContext && !session.tls) ext.push("STARTTLS");
          return reply(250, [`${hostname} greets ${arg}`, ...ext].join("\n"));
        }
        case "HELO":
          resetTransaction();
          if (hooked("helo", arg)) return;
          session.ehlo = arg;
          return reply(250, hostname);
        case "MAIL": {
          if (session.ehlo === undefined) return reply(503, "5.5.1 EHLO first");
          if (session.mailFrom !== undefined) return reply(503, "5.5.1 Nested MAIL command");
          const path = pathArg(arg);
          if (path === undefined) return reply(501, "5.5.4 Syntax: MAIL FROM:<address>");
          if (hooked("mail", path)) return;
          session.mailFrom = path;
          return reply(250, "2.1.0 OK");
        }
        case "RCPT": {
          if (session.mailFrom === undefined) return reply(503, "5.5.1 MAIL first");
          const path = pathArg(arg);
          if (path === undefined) return reply(501, "5.5.4 Syntax: RCPT TO:<address>");
          if (hooked("rcpt", path)) return;
          session.rcptTo.push(path);
          return reply(250, "2.1.5 OK");
        }
        case "DATA":
          if (session.mailFrom === undefined) return reply(503, "5.5.1 MAIL first");
          if (session.rcptTo.length === 0) return reply(554, "5.5.1 No valid recipients");
          if (hooked("data", "")) return;
          mode = "data";
          dataLen = 0;
          return reply(354, "Send data, end with <CRLF>.<CRLF>");
        case "RSET":
          resetTransaction();
          if (hooked("rset", "")) return;
          return reply(250, "2.0.0 OK");
        case "NOOP":
          return reply(250, "2.0.0 OK");
        case "VRFY":
          return reply(252, "2.5.0 Cannot VRFY");
        case "QUIT":
          closeAfterFlush = true;
          mode = "closing";
          return reply(221, "2.0.0 Bye");
        case "STARTTLS":
          if (!secureContext || session.tls) return reply(502, "5.5.1 STARTTLS not available");
          if (hooked("starttls", "")) return;
          resetTransaction();
          session.ehlo = undefined;
          upgradeAfterFlush = true;
          return reply(220, "2.0.0 Ready to start TLS");
        default:
          return reply(500, "5.5.2 Command not recognized");
      }
    };

    const finishMessage = (raw: Buffer) => {
      mode = "command";
      freshRead = true; // commands after the body belong to a new group
      const data = unstuff(raw);
      if (hooked("message", "")) {
        resetTransaction();
        return;
      }
      conn.messages++;
      session.messages++;
      messages.push({
        localAddress: conn.localAddress,
        localPort: conn.localPort,
        remoteAddress: conn.remoteAddress,
        remotePort: conn.remotePort,
        ehlo: session.ehlo,
        mailFrom: session.mailFrom!,
        rcptTo: session.rcptTo,
        data,
        tls: session.tls,
        receivedAt: Date.now(),
        connectionId: conn.id,
      });
      resetTransaction();
      reply(250, `2.0.0 OK queued as ${messages.length}`);
      notify();
    };

    /** Append to the DATA buffer, growing it geometrically so big bodies copy O(n) in total. */
    const appendData = (chunk: Buffer) => {
      if (dataLen + chunk.length > dataBuf.length) {
        const grown = Buffer.alloc(Math.max(dataBuf.length * 2, dataLen + chunk.length, 65536));
        dataBuf.copy(grown, 0, 0, dataLen);
        dataBuf = grown;
      }
      chunk.copy(dataBuf, dataLen);
      dataLen += chunk.length;
    };

    /** Consume as much input as possible; returns when more bytes are needed. */
    const process = () => {
      while (!busy && mode !== "closing" && !upgradeAfterFlush && input.length > 0) {
        if (mode === "data") {
          const before = dataLen;
          appendData(input);
          input = Buffer.alloc(0);
          const view = dataBuf.subarray(0, dataLen);
          let end = -1;
          let skip = 0;
          if (dataLen >= 3 && view[0] === 0x2e && view[1] === 0x0d && view[2] === 0x0a) {
            end = 0; // empty message: the terminator right after 354
            skip = 3;
          } else {
            const idx = view.indexOf(CRLF_DOT_CRLF, Math.max(0, before - 4));
            if (idx >= 0) {
              end = idx + 2;
              skip = 3;
            }
          }
          if (end < 0) break;
          input = Buffer.from(view.subarray(end + skip));
          finishMessage(view.subarray(0, end));
          if (dataBuf.length > 1 << 20) dataBuf = Buffer.alloc(0); // drop big buffers between messages
          continue;
        }
        const nl = input.indexOf(0x0a);
        if (nl < 0) {
          if (input.length > MAX_LINE) {
            input = Buffer.alloc(0);
            reply(500, "5.5.6 Line too long");
          }
          break;
        }
        const end = nl > 0 && input[nl - 1] === 0x0d ? nl - 1 : nl;
        const line = input.subarray(0, end).toString("latin1");
        input = input.subarray(nl + 1);
        command(line);
      }
      flush();
    };

    const flush = () => {
      if (out === "" || busy) return;
      const send = () => {
        const text = out;
        out = "";
        if (sock.destroyed) return;
        sock.write(text);
        if (closeAfterFlush) {
          sock.end();
          return;
        }
        if (upgradeAfterFlush) upgrade();
      };
      if (delayMs > 0) {
        busy = true;
        later(() => {
          busy = false;
          send();
          process();
        }, delayMs);
      } else {
        send();
      }
    };

    const onData = (chunk: Buffer) => {
      if (mode === "closing") return;
      freshRead = true;
      input = input.length === 0 ? chunk : Buffer.concat([input, chunk]);
      process();
    };

    const upgrade = () => {
      upgradeAfterFlush = false;
      input = Buffer.alloc(0); // RFC 3207 §4.2: discard anything pipelined after STARTTLS
      sock.off("data", onData);
      // Under Deno the plain socket must be paused before wrapping, or the
      // ClientHello is delivered as plain data and the handshake stalls.
      sock.pause();
      const secure = new tls.TLSSocket(sock, { isServer: true, secureContext });
      secure.on("secure", () => {
        session.tls = true;
        conn.tls = true;
      });
      secure.on("data", onData);
      secure.on("error", () => secure.destroy());
      sock = secure;
    };

    raw.on("data", onData);
    raw.on("error", () => raw.destroy());
    raw.on("close", () => {
      sockets.delete(raw);
      concurrent--;
      conn.closedAt = Date.now();
    });

    const banner = hook?.("connect", "", session);
    if (banner) {
      reply(banner.code, banner.text);
      if (banner.code >= 500) refused = true;
    } else {
      reply(220, bannerText);
    }
    flush();
  }

  // Listen on every address with one port; with port 0 take the first address's
  // ephemeral port and retry the whole set if another address has it taken.
  const servers: net.Server[] = [];
  const listen = (address: string, port: number) =>
    new Promise<net.Server>((resolve, reject) => {
      const server = net.createServer(handle);
      server.once("error", reject);
      server.listen({ host: address, port }, () => {
        server.off("error", reject);
        resolve(server);
      });
    });
  const closeServers = () =>
    Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
  let port = options.port ?? 0;
  for (let attempt = 0;; attempt++) {
    try {
      for (const address of addresses) {
        const server = await listen(address, port);
        servers.push(server);
        if (port === 0) port = (server.address() as net.AddressInfo).port;
      }
      break;
    } catch (err) {
      await closeServers();
      if ((options.port ?? 0) !== 0 || attempt >= 10) throw err;
      port = 0;
    }
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    for (const t of timers) clearTimeout(t);
    timers.clear();
    const done = closeServers();
    for (const s of sockets) s.destroy();
    await done;
    for (const w of waiters.splice(0)) w.resolve(messages.slice());
  }

  return {
    port,
    addresses,
    messages,
    connections,
    get concurrent() {
      return concurrent;
    },
    get maxConcurrent() {
      return maxConcurrent;
    },
    tlsAvailable: secureContext !== undefined,
    waitFor(n: number, timeoutMs = 5000): Promise<SinkMessage[]> {
      if (messages.length >= n) return Promise.resolve(messages.slice());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          const i = waiters.indexOf(entry);
          if (i >= 0) waiters.splice(i, 1);
          reject(
            new Error(`Waiting for ${n} messages: only ${messages.length} after ${timeoutMs} ms`),
          );
        }, timeoutMs);
        const entry = {
          n,
          resolve: (m: SinkMessage[]) => {
            clearTimeout(timer);
            resolve(m);
          },
        };
        waiters.push(entry);
      });
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
