/**
 * ListenerDomain: the typed result of `kumo.make_listener_domain { ... }`
 * (lua-api §6.5) — per-domain relay and OOB/ARF report handling.
 *
 * Built by the `get_listener_domain` binding; the SMTP server consults it at
 * RCPT TO for the relay decision and at end of DATA for report handling.
 * Conversion only: never performs the relay decision here.
 *
 * @module
 */

import { CidrSet } from "../../util/cidr.ts";
import { bool, cidrList, convert, custom, dflt, duration, enumOf, object } from "./schema.ts";

/** What to do with an RFC 3464 / RFC 5965 report addressed to the domain. */
export type ReportDisposition = "Ignore" | "LogThenRelay" | "LogThenDrop";

/** A converted listener domain. */
export interface ListenerDomain {
  /** Anyone may relay to this recipient domain. @default false */
  relayTo: boolean;
  /** Peers that may relay anywhere when the sender domain is this one. @default empty */
  relayFrom: CidrSet;
  /** @default "Ignore" (`true` → "LogThenRelay") */
  logOob: ReportDisposition;
  /** @default "Ignore" (`true` → "LogThenRelay") */
  logArf: ReportDisposition;
  /** Deprecated, unused (ms). @default 60_000 */
  ttl: number;
}

const DISPOSITION_NAMES = enumOf(["Ignore", "LogThenRelay", "LogThenDrop"] as const);
const BOOL = bool();

/** `bool | 'Ignore' | 'LogThenRelay' | 'LogThenDrop'`, normalised to the string. */
const DISPOSITION = custom<ReportDisposition>(
  "a boolean or one of `Ignore`, `LogThenRelay`, `LogThenDrop`",
  (v, cx) => {
    if (typeof v === "boolean") return BOOL.parse(v, cx) ? "LogThenRelay" : "Ignore";
    return DISPOSITION_NAMES.parse(v, cx);
  },
);

/** The schema of `make_listener_domain`. */
export const LISTENER_DOMAIN = object({
  relay_to: dflt(bool(), false),
  relay_from: dflt(cidrList(), () => CidrSet.parse([])),
  log_oob: dflt(DISPOSITION, "Ignore"),
  log_arf: dflt(DISPOSITION, "Ignore"),
  ttl: dflt(duration(), 60_000),
}, { name: "ListenerDomain" });

/**
 * Convert a `make_listener_domain` table.
 *
 * @example
 * ```ts
 * parseListenerDomain({ log_oob: true }).logOob; // "LogThenRelay"
 * ```
 */
export function parseListenerDomain(input: unknown): ListenerDomain {
  return convert(LISTENER_DOMAIN, input);
}

/** The JSON/Lua-readable form. */
export function listenerDomainToJSON(x: ListenerDomain): Record<string, unknown> {
  return LISTENER_DOMAIN.toJSON(x);
}
