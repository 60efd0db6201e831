/**
 * HttpListenerConfig: the typed result of `kumo.start_http_listener { ... }`
 * (lua-api §5.2).
 *
 * Converted once at startup and handed to `http/`. Never binds the socket
 * or loads certificates here.
 *
 * @module
 */

import { CidrSet } from "../../util/cidr.ts";
import {
  bool,
  cidrList,
  convert,
  dflt,
  hostPort,
  int,
  type KeySource,
  keySource,
  object,
  opt,
  string,
} from "./schema.ts";
import { machineHostname } from "./esmtp_listener.ts";

/** A converted HTTP listener config. */
export interface HttpListenerConfig {
  /** @default "127.0.0.1:8000" */
  listen: string;
  /** @default the machine hostname */
  hostname: string;
  /** @default false */
  useTls: boolean;
  tlsCertificate?: KeySource;
  tlsPrivateKey?: KeySource;
  /** Peers allowed without credentials. @default 127.0.0.1, ::1 */
  trustedHosts: CidrSet;
  /** Bytes, after decompression. @default 2 MiB */
  requestBodyLimit: number;
}

/** The schema of `start_http_listener`. */
export const HTTP_LISTENER = object({
  listen: dflt(hostPort(), "127.0.0.1:8000"),
  hostname: dflt(string(), machineHostname),
  use_tls: dflt(bool(), false),
  tls_certificate: opt(keySource()),
  tls_private_key: opt(keySource()),
  trusted_hosts: dflt(cidrList(), () => CidrSet.parse(["127.0.0.1", "::1"])),
  request_body_limit: dflt(int({ name: "usize" }), 2 * 1024 * 1024),
}, { name: "HttpListenerParams" });

/**
 * Convert a `start_http_listener` table.
 *
 * @example
 * ```ts
 * parseHttpListener({}).listen; // "127.0.0.1:8000"
 * ```
 */
export function parseHttpListener(input: unknown): HttpListenerConfig {
  return convert(HTTP_LISTENER, input);
}

/** The JSON/Lua-readable form. */
export function httpListenerToJSON(x: HttpListenerConfig): Record<string, unknown> {
  return HTTP_LISTENER.toJSON(x);
}
