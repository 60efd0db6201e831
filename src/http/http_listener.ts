/**
 * One `kumo.start_http_listener`: binds the configured address with
 * `Deno.serve` (HTTPS with the configured certificate and key, or a
 * self-signed certificate for `hostname`, when `use_tls`), serves the Hono
 * app and logs `http listener on <addr>` / `https listener on <addr>` with
 * the real bound port.
 *
 * Place on the path: started by `src/server.ts` beside the ESMTP listeners,
 * stopped first at shutdown (in-flight requests finish). A bind failure
 * aborts startup.
 *
 * @module
 */

import type { HttpListenerConfig } from "../policy/config/http_listener.ts";
import type { KeySource } from "../policy/config/schema.ts";
import { parseListenAddress } from "../smtp/server/listener.ts";
import { selfSignedCertificate } from "../smtp/server/tls_material.ts";
import { diag } from "../log/diag.ts";
import { buildHttpApp } from "./app.ts";
import type { HttpServices } from "./http_services.ts";

/** A running HTTP listener. */
export interface RunningHttpListener {
  /** Bound `ip:port`. */
  address: string;
  /** Stop accepting; resolves when in-flight requests are done. */
  shutdown(): Promise<void>;
}

async function readKeySource(src: KeySource, what: string): Promise<string> {
  switch (src.kind) {
    case "file":
      return await Deno.readTextFile(src.path);
    case "data":
      return src.data;
    default:
      throw new Error(`Cannot load TLS ${what} from a "${src.kind}" key source: not supported`);
  }
}

/**
 * Start one listener.
 *
 * @throws {Error} when the address cannot be bound or TLS material cannot be loaded
 * @example
 * ```ts
 * const l = await startHttpListener(config, { reception, queues: () => qm, metrics: metricsRegistry });
 * console.log(l.address); // "127.0.0.1:8000"
 * ```
 */
export async function startHttpListener(
  config: HttpListenerConfig,
  shared: Omit<HttpServices, "listener">,
): Promise<RunningHttpListener> {
  const { host, port } = parseListenAddress(config.listen);
  let tls: { cert: string; key: string } | undefined;
  if (config.useTls) {
    tls = config.tlsCertificate !== undefined && config.tlsPrivateKey !== undefined
      ? {
        cert: await readKeySource(config.tlsCertificate, "certificate"),
        key: await readKeySource(config.tlsPrivateKey, "private key"),
      }
      : await selfSignedCertificate(config.hostname);
  }
  const services: HttpServices = {
    ...shared,
    listener: { config, address: config.listen, ip: host },
  };
  const app = buildHttpApp(services);
  const server = Deno.serve(
    {
      hostname: host,
      port,
      ...(tls ?? {}),
      onListen: () => {},
      onError: (e) => {
        diag.error("kumod::http", `request failed: ${e}`);
        return new Response("Error: internal error", { status: 500 });
      },
    },
    (req, info) => app.fetch(req, { remoteAddr: info.remoteAddr }),
  );
  const a = server.addr as Deno.NetAddr;
  const address = a.hostname.includes(":")
    ? `[${a.hostname}]:${a.port}`
    : `${a.hostname}:${a.port}`;
  services.listener.address = address;
  diag.info("kumod", `${tls ? "https" : "http"} listener on ${address}`);
  let stopping: Promise<void> | null = null;
  return {
    address,
    shutdown: () => (stopping ??= server.shutdown()),
  };
}
