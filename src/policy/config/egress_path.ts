/**
 * EgressPathConfig: the typed result of `kumo.make_egress_path { ... }`
 * (lua-api §6.4) — how one (source, site) pair delivers: limits, rates, TLS,
 * timeouts and address filters.
 *
 * Built by the `get_egress_path_config` binding; consumed by `egress/` ready
 * queues and `smtp/client/`. Conversion only: never opens connections or
 * resolves hosts here.
 *
 * @module
 */

import { CidrSet } from "../../util/cidr.ts";
import type { IpLookupStrategy } from "../../dns/mail_exchanger.ts";
import type { LimitSpec } from "../../util/limit_spec.ts";
import type { ThrottleSpec } from "../../util/throttle_spec.ts";
import {
  anyJson,
  array,
  bool,
  cidrList,
  convert,
  custom,
  dflt,
  duration,
  enumOf,
  int,
  type KeySource,
  keySource,
  limit,
  map,
  object,
  opt,
  string,
  throttle,
} from "./schema.ts";
import { type ConfigRefreshStrategy, REFRESH_STRATEGY } from "./queue_config.ts";

/** STARTTLS policy. */
export type Tls =
  | "Opportunistic"
  | "OpportunisticInsecure"
  | "Required"
  | "RequiredInsecure"
  | "Disabled";
/** Address families in the connection plan (defined by the DNS stage that uses it). */
export type { IpLookupStrategy };
/** What to do after 421 / IO error / timeout mid-delivery. */
export type ReconnectStrategy = "ConnectNextHost" | "ReconnectSameHost" | "TerminateSession";

/** A converted egress path config. Durations in ms. */
export interface EgressPathConfig {
  /** @default 32 */
  connectionLimit: LimitSpec;
  additionalConnectionLimits: Record<string, LimitSpec>;
  maxConnectionRate?: ThrottleSpec;
  maxMessageRate?: ThrottleSpec;
  additionalMessageRateThrottles: Record<string, ThrottleSpec>;
  sourceSelectionRate?: ThrottleSpec;
  additionalSourceSelectionRates: Record<string, ThrottleSpec>;
  /** @default 1024 */
  maxDeliveriesPerConnection: number;
  /** @default 100 */
  maxRecipientsPerBatch: number;
  /** @default 1024 */
  maxReady: number;
  /** @default "Opportunistic" */
  enableTls: Tls;
  /** @default true */
  enableMtaSts: boolean;
  enableDane: boolean;
  /** @default true */
  enablePipelining: boolean;
  /** @default true */
  enableRset: boolean;
  /** Accepted and ignored. */
  tlsPreferOpenssl: boolean;
  opensslCipherList?: string;
  opensslCipherSuites?: string;
  opensslOptions?: string;
  /** A string or array of suite names, as given. */
  rustlsCipherSuites?: string[];
  tlsCertificate?: KeySource;
  tlsPrivateKey?: KeySource;
  opportunisticTlsReconnectOnFailedHandshake: boolean;
  rememberBrokenTls?: number;
  /** @default 25 */
  smtpPort: number;
  ehloDomain?: string;
  smtpAuthPlainUsername?: string;
  smtpAuthPlainPassword?: KeySource;
  allowSmtpAuthPlainWithoutTls: boolean;
  allowSmtpAuthPlainWithoutValidCertificate: boolean;
  /** @default 127.0.0.0/8, ::1, 0.0.0.0, :: */
  prohibitedHosts: CidrSet;
  /** @default empty */
  skipHosts: CidrSet;
  /** @default "Ipv4AndIpv6" */
  ipLookupStrategy: IpLookupStrategy;
  /** @default 100 */
  consecutiveConnectionFailuresBeforeDelay: number;
  /** @default "ConnectNextHost" */
  reconnectStrategy: ReconnectStrategy;
  tryNextHostOnTransportError: boolean;
  useLmtp: boolean;
  ignore8bitChecks: boolean;
  /** @default 60_000 */
  connectTimeout: number;
  /** @default 60_000 */
  bannerTimeout: number;
  /** @default 300_000 */
  ehloTimeout: number;
  /** @default 300_000 */
  mailFromTimeout: number;
  /** @default 300_000 */
  rcptToTimeout: number;
  /** @default 300_000 */
  dataTimeout: number;
  /** @default 300_000 */
  dataDotTimeout: number;
  /** @default 5_000 */
  rsetTimeout: number;
  /** @default 5_000 (upstream code; docs say 60 s) */
  idleTimeout: number;
  /** @default 5_000 */
  starttlsTimeout: number;
  /** @default 60_000 */
  authTimeout: number;
  systemShutdownTimeout?: number;
  /** @default 60_000 */
  refreshInterval: number;
  /** @default "Ttl" */
  refreshStrategy: ConfigRefreshStrategy;
  providerName?: string;
  /** Tuning knobs: accepted and kept as given. */
  readyqPoolName?: string;
  lowMemoryReductionPolicy?: unknown;
  noMemoryReductionPolicy?: unknown;
  dispatcherWakeupStrategy?: unknown;
  maintainerWakeupStrategy?: unknown;
  aggressiveConnectionOpening?: unknown;
  dispatcherProgressWatchdogTimeout?: unknown;
}

const DEFAULT_PROHIBITED = CidrSet.parse(["127.0.0.0/8", "::1", "0.0.0.0", "::"]);
const EMPTY_SET = CidrSet.parse([]);

const STRING_ARRAY = array(string());
const STRINGS = custom<string[]>(
  "a string or a sequence of strings",
  (v, cx) => (typeof v === "string" ? [v] : STRING_ARRAY.parse(v, cx)),
);

/** The schema of `make_egress_path`. */
export const EGRESS_PATH = object({
  connection_limit: dflt(limit(), (): LimitSpec => ({ limit: 32, local: false })),
  additional_connection_limits: dflt(map(limit()), () => ({})),
  max_connection_rate: opt(throttle()),
  max_message_rate: opt(throttle()),
  additional_message_rate_throttles: dflt(map(throttle()), () => ({})),
  source_selection_rate: opt(throttle()),
  additional_source_selection_rates: dflt(map(throttle()), () => ({})),
  max_deliveries_per_connection: dflt(int({ name: "usize" }), 1024),
  max_recipients_per_batch: dflt(int({ min: 1, name: "usize" }), 100),
  max_ready: dflt(int({ name: "usize" }), 1024),
  enable_tls: dflt(
    enumOf(
      [
        "Opportunistic",
        "OpportunisticInsecure",
        "Required",
        "RequiredInsecure",
        "Disabled",
      ] as const,
    ),
    "Opportunistic",
  ),
  enable_mta_sts: dflt(bool(), true),
  enable_dane: dflt(bool(), false),
  enable_pipelining: dflt(bool(), true),
  enable_rset: dflt(bool(), true),
  tls_prefer_openssl: dflt(bool(), false),
  openssl_cipher_list: opt(string()),
  openssl_cipher_suites: opt(string()),
  openssl_options: opt(string()),
  rustls_cipher_suites: opt(STRINGS),
  tls_certificate: opt(keySource()),
  tls_private_key: opt(keySource()),
  opportunistic_tls_reconnect_on_failed_handshake: dflt(bool(), false),
  remember_broken_tls: opt(duration()),
  smtp_port: dflt(int({ max: 65535, name: "u16" }), 25),
  ehlo_domain: opt(string()),
  smtp_auth_plain_username: opt(string()),
  smtp_auth_plain_password: opt(keySource()),
  allow_smtp_auth_plain_without_tls: dflt(bool(), false),
  allow_smtp_auth_plain_without_valid_certificate: dflt(bool(), false),
  prohibited_hosts: dflt(cidrList(), DEFAULT_PROHIBITED),
  skip_hosts: dflt(cidrList(), EMPTY_SET),
  ip_lookup_strategy: dflt(
    enumOf(["Ipv4AndIpv6", "Ipv4Only", "Ipv6Only", "Ipv4ThenIpv6", "Ipv6ThenIpv4"] as const),
    "Ipv4AndIpv6",
  ),
  consecutive_connection_failures_before_delay: dflt(int({ name: "usize" }), 100),
  reconnect_strategy: dflt(
    enumOf(["ConnectNextHost", "ReconnectSameHost", "TerminateSession"] as const),
    "ConnectNextHost",
  ),
  try_next_host_on_transport_error: dflt(bool(), false),
  use_lmtp: dflt(bool(), false),
  ignore_8bit_checks: dflt(bool(), false),
  connect_timeout: dflt(duration(), 60_000),
  banner_timeout: dflt(duration(), 60_000),
  ehlo_timeout: dflt(duration(), 300_000),
  mail_from_timeout: dflt(duration(), 300_000),
  rcpt_to_timeout: dflt(duration(), 300_000),
  data_timeout: dflt(duration(), 300_000),
  data_dot_timeout: dflt(duration(), 300_000),
  rset_timeout: dflt(duration(), 5_000),
  idle_timeout: dflt(duration(), 5_000),
  starttls_timeout: dflt(duration(), 5_000),
  auth_timeout: dflt(duration(), 60_000),
  system_shutdown_timeout: opt(duration()),
  refresh_interval: dflt(duration(), 60_000),
  refresh_strategy: dflt(REFRESH_STRATEGY, "Ttl"),
  provider_name: opt(string()),
  readyq_pool_name: opt(string()),
  low_memory_reduction_policy: opt(anyJson()),
  no_memory_reduction_policy: opt(anyJson()),
  dispatcher_wakeup_strategy: opt(anyJson()),
  maintainer_wakeup_strategy: opt(anyJson()),
  aggressive_connection_opening: opt(anyJson()),
  dispatcher_progress_watchdog_timeout: opt(anyJson()),
}, { name: "EgressPathConfig" });

/**
 * Convert a `make_egress_path` table.
 *
 * @example
 * ```ts
 * parseEgressPath({ prohibited_hosts: {} }).prohibitedHosts.size; // 0
 * ```
 */
export function parseEgressPath(input: unknown): EgressPathConfig {
  return convert(EGRESS_PATH, input);
}

/** The JSON/Lua-readable form. */
export function egressPathToJSON(x: EgressPathConfig): Record<string, unknown> {
  return EGRESS_PATH.toJSON(x);
}
