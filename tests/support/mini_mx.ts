/**
 * A small SMTP/LMTP server for the delivery behaviours the general sink
 * (smtp_sink.ts) does not play: LMTP (RFC 2033: `LHLO`, one reply per
 * accepted recipient after the final dot), STARTTLS that asks the client
 * for a certificate (and records its subject), and never answering the
 * final dot (a delivery that is still in flight at shutdown).
 *
 * It stands at the far end of the delivery path on loopback and never
 * relays anything. Commands are handled one line at a time, in order, so
 * pipelined clients work.
 *
 * @module
 */

import net from "node:net";
import tls from "node:tls";
import type { Buffer } from "node:buffer";

/** One message as received (dot-unstuffed body). */
export interface MiniMessage {
  /** `LHLO` or `EHLO` argument. */
  greeting: string;
  /** `"LHLO"` or `"EHLO"`. */
  greetingVerb: string;
  mailFrom: string;
  rcptTo: string[];
  body: string;
  tls: boolean;
  /** Subject of the client certificate (`{ CN: ... }`), when one was presented over TLS. */
  clientCert?: Record<string, string>;
  /** The replies sent after the final dot, in order. */
  dotReplies: string[];
}

/** Options for {@linkcode startMiniMx}. */
export interface MiniMxOptions {
  /** Listen address. @default "127.0.0.1" */
  address?: string;
  /** Speak LMTP: `LHLO` only (EHLO/HELO get 500), one reply per recipient after the dot. @default false */
  lmtp?: boolean;
  /** Offer STARTTLS with this server identity and ask for a client certificate. */
  tls?: { key: string; cert: string };
  /** LMTP: the reply after the dot for one recipient. @default `250 2.0.0 <rcpt> delivered` */
  rcptDotReply?: (rcpt: string) => string;
  /** Never answer the final dot (the body is still recorded in `bodies`). @default false */
  holdDot?: boolean;
}

/** A running server. */
export interface MiniMx extends AsyncDisposable {
  readonly port: number;
  /** Completed messages. */
  readonly messages: MiniMessage[];
  /** Every body received, including held ones. */
  readonly bodies: string[];
  /** Resolve once `n` bodies have arrived (reject after `timeoutMs`). */
  waitForBodies(n: number, timeoutMs?: number): Promise<void>;
}

/** Start the server on a free port. */
export async function startMiniMx(options: MiniMxOptions = {}): Promise<MiniMx> {
  const lmtp = options.lmtp ?? false;
  const secureContext = options.tls ? tls.createSecureContext(options.tls) : undefined;
  const messages: MiniMessage[] = [];
  const bodies: string[] = [];
  const sockets = new Set<net.Socket>();

  const handle = (raw: net.Socket) => {
    sockets.add(raw);
    raw.on("close", () => sockets.delete(raw));
    let sock: net.Socket = raw;
    let input = "";
    let inData = false;
    let data = "";
    let greeting = "", greetingVerb = "";
    let mailFrom: string | undefined;
    let rcpts: string[] = [];
    let secure = false;
    let clientCert: Record<string, string> | undefined;
    const send = (line: string) => {
      if (!sock.destroyed) sock.write(line + "\r\n");
    };
    const reset = () => {
      mailFrom = undefined;
      rcpts = [];
    };
    const finish = () => {
      const body = data.replace(/^\./gm, "");
      bodies.push(body);
      if (options.holdDot) return; // stay silent: the client waits for the reply
      const dotReplies = lmtp
        ? rcpts.map((r) => options.rcptDotReply?.(r) ?? `250 2.0.0 <${r}> delivered`)
        : ["250 2.0.0 accepted"];
      for (const r of dotReplies) send(r);
      messages.push({
        greeting,
        greetingVerb,
        mailFrom: mailFrom ?? "",
        rcptTo: rcpts,
        body,
        tls: secure,
        clientCert,
        dotReplies,
      });
      reset();
    };
    const command = (line: string): boolean => {
      const sp = line.indexOf(" ");
      const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
      const arg = sp < 0 ? "" : line.slice(sp + 1);
      const ext = ["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"];
      if (secureContext && !secure) ext.push("STARTTLS");
      switch (verb) {
        case "LHLO":
        case "EHLO":
        case "HELO":
          if ((verb === "LHLO") !== lmtp) {
            send(`500 5.5.1 ${verb} not recognized`);
            return true;
          }
          greeting = arg;
          greetingVerb = verb;
          reset();
          ext.forEach((e, i) => send(`250${i === ext.length - 1 ? " " : "-"}${e}`));
          return true;
        case "STARTTLS": {
          send("220 2.0.0 go ahead");
          sock.removeAllListeners("data");
          sock.pause();
          const s = new tls.TLSSocket(sock, {
            isServer: true,
            secureContext,
            requestCert: true,
            rejectUnauthorized: false,
          });
          s.on("secure", () => {
            secure = true;
            const c = s.getPeerCertificate();
            if (c && c.subject) clientCert = { ...c.subject } as Record<string, string>;
          });
          s.on("error", () => s.destroy());
          s.on("data", onData);
          sock = s;
          input = "";
          return false;
        }
        case "MAIL":
          mailFrom = /<([^>]*)>/.exec(arg)?.[1] ?? "";
          send("250 2.1.0 ok");
          return true;
        case "RCPT":
          rcpts.push(/<([^>]*)>/.exec(arg)?.[1] ?? "");
          send("250 2.1.5 ok");
          return true;
        case "DATA":
          inData = true;
          data = "";
          send("354 go ahead");
          return true;
        case "RSET":
          reset();
          send("250 2.0.0 ok");
          return true;
        case "NOOP":
          send("250 2.0.0 ok");
          return true;
        case "QUIT":
          send("221 2.0.0 bye");
          sock.end();
          return false;
        default:
          send("500 5.5.2 unknown command");
          return true;
      }
    };
    const onData = (chunk: Buffer) => {
      input += chunk.toString("latin1");
      for (;;) {
        const nl = input.indexOf("\r\n");
        if (nl < 0) return;
        const line = input.slice(0, nl);
        input = input.slice(nl + 2);
        if (inData) {
          if (line === ".") {
            inData = false;
            finish();
          } else data += line + "\r\n";
          continue;
        }
        if (!command(line)) return;
      }
    };
    raw.on("data", onData);
    raw.on("error", () => raw.destroy());
    send(`220 mini.test ${lmtp ? "LMTP" : "ESMTP"} ready`);
  };

  const server = net.createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: options.address ?? "127.0.0.1", port: 0 }, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    messages,
    bodies,
    async waitForBodies(n, timeoutMs = 10_000) {
      const end = Date.now() + timeoutMs;
      while (bodies.length < n) {
        if (Date.now() > end) throw new Error(`waited for ${n} bodies, have ${bodies.length}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async [Symbol.asyncDispose]() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
