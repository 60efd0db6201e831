/**
 * EsmtpListenerConfig: the typed result of `kumo.start_esmtp_listener { ... }`
 * (lua-api §5.1), with the `peer`/`via` overrides and the merge of
 * `smtp_server_get_dynamic_parameters` results.
 *
 * Converted once at startup; `smtp/server/` calls
 * {@linkcode resolveListenerParams} once per accepted connection (not per
 * line) to get the effective parameters. Never binds the socket here.
 *
 * @module
 */

import { type CidrMap, CidrSet } from "../../util/cidr.ts";
import { ConfigError } from "../../util/config_error.ts";
import {
  anyJson,
  array,
  bool,
  cidrList,
  cidrMap,
  convert,
  dflt,
  duration,
  enumOf,
  hostPort,
  int,
  type KeySource,
  keySource,
  map,
  object,
  type ObjectOf,
  opt,
  partial,
  string,
} from "./schema.ts";

/** Bare CR / LF handling in DATA. */
export type InvalidLineEndings = "Deny" | "Allow" | "Fix";
/** One message per recipient, or per recipient domain. */
export type BatchHandling = "BifurcateAlways" | "BatchByDomain";

/** `trace_headers` settings. */
export interface TraceHeaders {
  /** Prepend `Received:`. @default true */
  receivedHeader: boolean;
  /** Prepend the base64 supplemental header. @default true */
  supplementalHeader: boolean;
  /** @default "X-KumoRef" */
  headerName: string;
  /** Meta keys copied into the supplemental header. @default [] */
  includeMetaNames: string[];
}

/** Parameters that may be overridden per peer/local address or dynamically. Durations in ms. */
export interface EsmtpListenerParams {
  /** @default the machine hostname */
  hostname: string;
  /** @default "KumoMTA" */
  banner: string;
  /** @default 127.0.0.1, ::1 */
  relayHosts: CidrSet;
  /** @default 20 MiB */
  maxMessageSize: number;
  /** @default 1024 */
  maxRecipientsPerMessage: number;
  /** @default 10000 */
  maxMessagesPerConnection: number;
  /** @default 60_000 */
  clientTimeout: number;
  /** @default 300_000 */
  dataProcessingTimeout: number;
  /**
   * Accepted and ignored: node:net hands the session whatever chunk the
   * socket read returned, so there is no read buffer to size.
   * @default 131072
   */
  dataBufferSize: number;
  /** @default 998 */
  lineLengthHardLimit: number;
  /** @default "Deny" */
  invalidLineEndings: InvalidLineEndings;
  /** @default "BifurcateAlways" */
  batchHandling: BatchHandling;
  /** STARTTLS certificate; with `tlsPrivateKey` (both or neither). @default self-signed */
  tlsCertificate?: KeySource;
  /** STARTTLS private key; with `tlsCertificate`. */
  tlsPrivateKey?: KeySource;
  /** CAs a client certificate must be issued by to set `tls_peer_subject_name`. */
  tlsRequiredClientCa?: KeySource;
  /** Keep messages in memory until their first transient failure. @default false */
  deferredSpool: boolean;
  /** Queue into `deferred_smtp_inject.kumomta.internal`, skip `smtp_server_message_received`. @default false */
  deferredQueue: boolean;
  traceHeaders: TraceHeaders;
  /** Initial connection metadata. @default {} */
  meta: Record<string, unknown>;
  allowXclient: boolean;
  requireProxyProtocol: boolean;
}

/** An override block: any subset of the parameters. */
export type PartialListenerParams = Partial<EsmtpListenerParams>;

/** The whole listener config. */
export interface EsmtpListenerConfig extends EsmtpListenerParams {
  /** `"ip:port"`, port 0 = ephemeral. @default "127.0.0.1:2025" */
  listen: string;
  /** @default 32768 */
  maxConnections: number;
  /** Overrides by peer address (longest prefix). */
  peer?: CidrMap<PartialListenerParams>;
  /** Overrides by local address, applied after `peer`. */
  via?: CidrMap<PartialListenerParams>;
}

/** The machine hostname (falls back to "localhost" without `--allow-sys`). */
export function machineHostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "localhost";
  }
}

const TRACE_HEADERS = object({
  received_header: dflt(bool(), true),
  supplemental_header: dflt(bool(), true),
  header_name: dflt(string(), "X-KumoRef"),
  include_meta_names: dflt(array(string()), () => []),
}, { name: "TraceHeaderConf" });

const PARAM_FIELDS = {
  hostname: dflt(string(), machineHostname),
  banner: dflt(string(), "KumoMTA"),
  relay_hosts: dflt(cidrList(), () => CidrSet.parse(["127.0.0.1", "::1"])),
  max_message_size: dflt(int({ name: "usize" }), 20 * 1024 * 1024),
  max_recipients_per_message: dflt(int({ name: "usize" }), 1024),
  max_messages_per_connection: dflt(int({ name: "usize" }), 10000),
  client_timeout: dflt(duration(), 60_000),
  data_processing_timeout: dflt(duration(), 300_000),
  data_buffer_size: dflt(int({ min: 1, name: "usize" }), 131072),
  line_length_hard_limit: dflt(int({ min: 1, name: "usize" }), 998),
  invalid_line_endings: dflt(enumOf(["Deny", "Allow", "Fix"] as const), "Deny"),
  batch_handling: dflt(enumOf(["BifurcateAlways", "BatchByDomain"] as const), "BifurcateAlways"),
  tls_certificate: opt(keySource()),
  tls_private_key: opt(keySource()),
  tls_required_client_ca: opt(keySource()),
  deferred_spool: dflt(bool(), false),
  deferred_queue: dflt(bool(), false),
  trace_headers: dflt(TRACE_HEADERS, () => TRACE_HEADERS.parse({}, { root: {}, key: "" })),
  meta: dflt(map(anyJson()), () => ({})),
  allow_xclient: dflt(bool(), false),
  require_proxy_protocol: dflt(bool(), false),
};

const PARAMS = object(PARAM_FIELDS, { name: "EsmtpListenerParams" });

/** Schema of an override block / dynamic parameters result (all keys optional). */
export const LISTENER_PARAMS_PARTIAL = partial(PARAMS);

const OVERRIDES = cidrMap(LISTENER_PARAMS_PARTIAL);

/** The schema of `start_esmtp_listener`. */
export const ESMTP_LISTENER = object({
  listen: dflt(hostPort(), "127.0.0.1:2025"),
  max_connections: dflt(int({ name: "usize" }), 32768),
  ...PARAM_FIELDS,
  peer: opt(OVERRIDES),
  via: opt(OVERRIDES),
}, { name: "EsmtpListenerParams" });

// Compile-time check that the schema and the hand-written interfaces agree.
type _Check = [
  ObjectOf<typeof PARAM_FIELDS> extends EsmtpListenerParams ? true : never,
  ObjectOf<typeof LISTENER_PARAMS_PARTIAL.fields> extends PartialListenerParams ? true : never,
];
const _check: _Check = [true, true];
void _check;

/**
 * Convert a `start_esmtp_listener` table.
 *
 * @example
 * ```ts
 * parseEsmtpListener({ listen: "0.0.0.0:25" }).maxConnections; // 32768
 * ```
 */
export function parseEsmtpListener(input: unknown): EsmtpListenerConfig {
  const cfg = convert(ESMTP_LISTENER, input);
  checkTlsPair(cfg, cfg.listen, "");
  for (const [which, map] of [["peer", cfg.peer], ["via", cfg.via]] as const) {
    for (const [cidr, o] of map?.entries() ?? []) {
      const merged = baseParams(cfg);
      applyOverride(merged, o);
      checkTlsPair(merged, cfg.listen, `${which}.${cidr}.`);
    }
  }
  return cfg;
}

/**
 * A lone `tls_certificate` or `tls_private_key` is a configuration error
 * (it would otherwise fall back to the self-signed identity unnoticed).
 *
 * @throws {ConfigError} naming the missing key
 */
function checkTlsPair(p: EsmtpListenerParams, listen: string, prefix: string): void {
  const has = p.tlsCertificate !== undefined;
  if (has === (p.tlsPrivateKey !== undefined)) return;
  const [set, missing] = has
    ? ["tls_certificate", "tls_private_key"]
    : ["tls_private_key", "tls_certificate"];
  throw new ConfigError(
    `Cannot start ESMTP listener "${listen}": ${prefix}${set} is set but ${prefix}${missing} ` +
      "is missing",
    { key: `${prefix}${missing}` },
  );
}

/** The JSON/Lua-readable form (`peer`/`via` as tables keyed by CIDR). */
export function esmtpListenerToJSON(x: EsmtpListenerConfig): Record<string, unknown> {
  return ESMTP_LISTENER.toJSON(x);
}

/** Apply one override block: set keys replace, `meta` keys merge. */
function applyOverride(out: EsmtpListenerParams, o: PartialListenerParams): void {
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue;
    if (k === "meta") out.meta = { ...out.meta, ...(v as Record<string, unknown>) };
    else (out as unknown as Record<string, unknown>)[k] = v;
  }
}

/** Copy of the overridable parameters of a listener config. */
function baseParams(base: EsmtpListenerParams): EsmtpListenerParams {
  return {
    hostname: base.hostname,
    banner: base.banner,
    relayHosts: base.relayHosts,
    maxMessageSize: base.maxMessageSize,
    maxRecipientsPerMessage: base.maxRecipientsPerMessage,
    maxMessagesPerConnection: base.maxMessagesPerConnection,
    clientTimeout: base.clientTimeout,
    dataProcessingTimeout: base.dataProcessingTimeout,
    dataBufferSize: base.dataBufferSize,
    lineLengthHardLimit: base.lineLengthHardLimit,
    invalidLineEndings: base.invalidLineEndings,
    batchHandling: base.batchHandling,
    tlsCertificate: base.tlsCertificate,
    tlsPrivateKey: base.tlsPrivateKey,
    tlsRequiredClientCa: base.tlsRequiredClientCa,
    deferredSpool: base.deferredSpool,
    deferredQueue: base.deferredQueue,
    traceHeaders: base.traceHeaders,
    meta: base.meta,
    allowXclient: base.allowXclient,
    requireProxyProtocol: base.requireProxyProtocol,
  };
}

/**
 * The effective parameters of one connection: the base, then the longest
 * `peer` match for `peerIp`, then the longest `via` match for `localIp`.
 * Called once per connection.
 *
 * @example
 * ```ts
 * const cfg = parseEsmtpListener({ peer: { "10.0.0.0/8": { banner: "hi" } } });
 * resolveListenerParams(cfg, "10.1.1.1", "127.0.0.1").banner; // "hi"
 * ```
 */
export function resolveListenerParams(
  base: EsmtpListenerConfig,
  peerIp: string,
  localIp: string,
): EsmtpListenerParams {
  const out = baseParams(base);
  const p = base.peer?.get(peerIp);
  if (p) applyOverride(out, p);
  const v = base.via?.get(localIp);
  if (v) applyOverride(out, v);
  return out;
}

/**
 * Merge the table returned by `smtp_server_get_dynamic_parameters` into
 * `base` (unknown keys rejected; `meta` keys merged).
 *
 * @throws {ConfigError} serde-worded, naming the bad key
 */
export function mergeDynamicParams(base: EsmtpListenerParams, table: unknown): EsmtpListenerParams {
  const out = baseParams(base);
  applyOverride(out, convert(LISTENER_PARAMS_PARTIAL, table));
  return out;
}
