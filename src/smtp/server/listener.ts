/**
 * EsmtpListener: one `kumo.start_esmtp_listener{}` bound with node:net — the
 * accept loop that turns each connection into an SmtpSession.
 *
 * Place on the mail's path: the entry point of inbound mail. It binds the
 * `listen` address (port 0 = ephemeral; `address` reports the real one),
 * enforces `max_connections` (`421 4.3.2 <host> too many concurrent
 * sessions. Try later`), sets TCP_NODELAY on every socket and tracks live
 * sessions so shutdown can tell them `421 4.3.2 <host> shutting down`. The
 * STARTTLS identity (configured or a cached self-signed certificate) is
 * prepared at start so the first STARTTLS does not wait for key generation.
 * It never parses SMTP itself.
 *
 * @module
 */

import net from "node:net";
import ipaddr from "ipaddr.js";
import type { EsmtpListenerConfig } from "../../policy/config/esmtp_listener.ts";
import { diag } from "../../log/diag.ts";
import type { ReceptionServices } from "./reception_services.ts";
import { SmtpSession } from "./session.ts";
import { serverTls } from "./tls_material.ts";
import { countConnectionDenied, kumoMetrics, listenerService } from "../../metrics/kumo_metrics.ts";

/** Split `"ip:port"` / `"[v6]:port"`. */
export function parseListenAddress(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(":");
  if (i < 0) throw new TypeError(`Cannot parse listen address "${listen}": expected ip:port`);
  let host = listen.slice(0, i);
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  const port = Number(listen.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError(`Cannot parse listen address "${listen}": bad port`);
  }
  return { host, port };
}

function unmap(ip: string | undefined): string {
  if (ip === undefined) return "";
  return ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip;
}

/**
 * A bound ESMTP listener.
 *
 * @example
 * ```ts
 * const l = await EsmtpListener.start(config, services);
 * console.log(l.address); // "127.0.0.1:40123"
 * await l.shutdown(5000);
 * ```
 */
export class EsmtpListener {
  readonly config: EsmtpListenerConfig;
  readonly #server: net.Server;
  readonly #services: ReceptionServices;
  readonly #sessions = new Set<SmtpSession>();
  #address = "";
  /**
   * The local end of every connection when bound to one address (not a
   * wildcard): known without a getsockname per connection (~5 µs in Deno).
   */
  #local: { ip: string; port: number } | null = null;
  #metrics?: {
    total: { inc(): void };
    totalHere: { inc(): void };
    open: { inc(): void; dec(): void };
    openHere: { inc(): void; dec(): void };
  };

  private constructor(config: EsmtpListenerConfig, services: ReceptionServices) {
    this.config = config;
    this.#services = services;
    this.#server = net.createServer((sock) => this.#accept(sock));
  }

  /**
   * Bind and start accepting.
   * @throws {Error} when the address cannot be bound
   */
  static async start(
    config: EsmtpListenerConfig,
    services: ReceptionServices,
  ): Promise<EsmtpListener> {
    const l = new EsmtpListener(config, services);
    const { host, port } = parseListenAddress(config.listen);
    await new Promise<void>((resolve, reject) => {
      l.#server.once("error", reject);
      l.#server.listen({ host, port }, () => {
        l.#server.off("error", reject);
        resolve();
      });
    });
    l.#server.on("error", (e) => diag.error("kumod::smtp_server", `listener error: ${e}`));
    const a = l.#server.address() as net.AddressInfo;
    l.#address = a.family === "IPv6" || a.address.includes(":")
      ? `[${a.address}]:${a.port}`
      : `${a.address}:${a.port}`;
    // A wildcard bind (`0.0.0.0`, `::`) accepts on every local address.
    l.#local = net.isIP(a.address) && ipaddr.process(a.address).range() !== "unspecified"
      ? { ip: unmap(a.address), port: a.port }
      : null;
    // Warm the STARTTLS identity (self-signed generation takes a moment).
    serverTls(config).catch((e) =>
      diag.error("kumod::smtp_server", `Cannot prepare TLS identity: ${(e as Error).message}`)
    );
    return l;
  }

  /** The bound address, `ip:port` (`[v6]:port`). */
  get address(): string {
    return this.#address;
  }

  /** Live sessions. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  #accept(sock: net.Socket): void {
    sock.setNoDelay(true);
    sock.pause();
    sock.on("error", () => {});
    const ends = {
      peerIp: unmap(sock.remoteAddress),
      peerPort: sock.remotePort ?? 0,
      localIp: this.#local?.ip ?? unmap(sock.localAddress),
      localPort: this.#local?.port ?? sock.localPort ?? 0,
      listener: this.#address, // [metrics]
    };
    const service = listenerService(this.#address); // [metrics] esmtp_listener:<addr>
    if (this.#sessions.size >= this.config.maxConnections) {
      countConnectionDenied("esmtp_listener"); // [metrics]
      countConnectionDenied(service);
      sock.end(`421 4.3.2 ${this.config.hostname} too many concurrent sessions. Try later\r\n`);
      setTimeout(() => sock.destroy(), 1000);
      return;
    }
    const session = new SmtpSession(sock, this.config, this.#services, ends);
    this.#sessions.add(session);
    const m = this.#metrics ??= { // [metrics] children looked up once per listener
      total: kumoMetrics.totalConnectionCount.labels("esmtp_listener"),
      totalHere: kumoMetrics.totalConnectionCount.labels(service),
      open: kumoMetrics.connectionCount.labels("esmtp_listener"),
      openHere: kumoMetrics.connectionCount.labels(service),
    };
    m.total.inc();
    m.totalHere.inc();
    m.open.inc();
    m.openHere.inc();
    void session.closed.then(() => {
      m.open.dec();
      m.openHere.dec();
      this.#sessions.delete(session);
    });
    session.start().catch((e) => {
      diag.error("kumod::smtp_server", `session start failed: ${e}`);
      session.destroy();
    });
  }

  /** Stop accepting new connections (existing sessions continue). */
  stopAccepting(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  /**
   * Stop accepting, send `421 4.3.2 <host> shutting down` to every session
   * (busy ones after their current command) and wait up to `graceMs` for
   * them to close; stragglers are destroyed.
   */
  async shutdown(graceMs = 5000): Promise<void> {
    const closed = this.stopAccepting();
    for (const s of this.#sessions) s.shutdown();
    const all = Promise.all([...this.#sessions].map((s) => s.closed));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((r) => (timer = setTimeout(r, graceMs)));
    await Promise.race([all, grace]);
    clearTimeout(timer);
    for (const s of this.#sessions) s.destroy();
    await Promise.race([all, new Promise((r) => setTimeout(r, 500))]);
    await closed;
  }
}
