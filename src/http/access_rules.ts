/**
 * Access rules of the HTTP listener (http-api.md §1): who the caller is
 * (trusted peer IP, Basic or Bearer credentials checked by the policy's
 * `http_server_validate_auth_basic` / `_bearer`, cached 60 s per exact
 * credential and forgotten at every config epoch bump) and what the
 * built-in ACL lets them do:
 *
 * | rule      | who passes                                        |
 * |-----------|---------------------------------------------------|
 * | `anyone`  | everybody; the Authorization header is not read   |
 * | `inject`  | a trusted peer IP or any authenticated identity  |
 * | `trusted` | a peer IP inside the listener's `trusted_hosts`   |
 *
 * A bad Authorization header fails the request (400/401) even from a trusted
 * peer. Denials are `401` with `<authinfo> not permitted <METHOD> on
 * <resource>`, the resource being `http_listener/<bound addr><path>`.
 *
 * Place on the path: the first middleware of every matched route; the admin
 * routes reuse {@link authorize}`(services, "trusted")`. It never reads the
 * request body.
 *
 * @module
 */

import type { Context, MiddlewareHandler } from "hono";
import type { HttpServices } from "./http_services.ts";
import type { PolicyEngine } from "../policy/engine.ts";
import { diag } from "../log/diag.ts";

/** The group every peer inside `trusted_hosts` gets. */
export const TRUSTED_IP_GROUP = "kumomta:http-listener-trusted-ip";

/** One established identity. */
export interface Identity {
  identity: string;
  /** `HttpBasicAuth`, `BearerToken`, or what the policy returned. */
  context: string;
}

/** Who is calling (upstream `AuthInfo`). */
export interface AuthInfo {
  peerAddress: string;
  identities: Identity[];
  groups: string[];
  /** The Basic-auth user name, when Basic auth was used (meta `http_auth`). */
  basicUser?: string;
}

/** Which built-in rule a route follows. */
export type AccessRule = "anyone" | "inject" | "trusted";

/** Hono environment of the kumo HTTP app. */
export interface HttpEnv {
  Bindings: { remoteAddr?: Deno.NetAddr };
  Variables: { auth: AuthInfo };
}

/** Credential results are reused this long (upstream: 60 s). */
const AUTH_CACHE_MS = 60_000;
const AUTH_CACHE_MAX = 10_000;

type AuthOutcome =
  | { kind: "ok"; identities: Identity[]; groups: string[] }
  | { kind: "denied"; text: string }
  | { kind: "error" };

const authCache = new Map<string, { at: number; outcome: Promise<AuthOutcome> }>();

/** The peer IP of a request (IPv4-mapped IPv6 unmapped). */
export function peerIp(c: Context<HttpEnv>): string {
  const a = c.env?.remoteAddr;
  const ip = a && "hostname" in a ? a.hostname : "";
  return ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip;
}

/** `AuthInfo` as text, for denial bodies and logs. */
export function authInfoText(a: AuthInfo): string {
  const ids = a.identities.map((i) => `${i.context}:${i.identity}`).join(", ");
  return `AuthInfo { peer_address: ${a.peerAddress}, identities: [${ids}], groups: [${
    a.groups.join(", ")
  }] }`;
}

function text(c: Context, status: 400 | 401 | 500, body: string): Response {
  return c.text(body, status);
}

function decodeBase64Utf8(b64: string): string | null {
  try {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

/** Merge a policy's returned AuthInfo-like table into identities/groups. */
function fromPolicyValue(v: unknown, fallback: Identity): AuthOutcome {
  if (v === true) return { kind: "ok", identities: [fallback], groups: [] };
  if (typeof v === "object" && v !== null) {
    const t = v as { identities?: unknown; groups?: unknown };
    const identities: Identity[] = [];
    const list = Array.isArray(t.identities) ? t.identities : [];
    for (const i of list) {
      if (typeof i === "object" && i !== null && typeof (i as Identity).identity === "string") {
        identities.push({
          identity: (i as Identity).identity,
          context: typeof (i as Identity).context === "string"
            ? (i as Identity).context
            : fallback.context,
        });
      }
    }
    const groups = (Array.isArray(t.groups) ? t.groups : []).filter((g): g is string =>
      typeof g === "string"
    );
    return { kind: "ok", identities, groups };
  }
  return {
    kind: "denied",
    text: `${fallback.context} Authentication Failed for ${fallback.identity}`,
  };
}

function validate(
  engine: PolicyEngine,
  event: string,
  args: (string | null)[],
  fallback: Identity,
): Promise<AuthOutcome> {
  const key = JSON.stringify([event, ...args]);
  const now = Date.now();
  const hit = authCache.get(key);
  if (hit !== undefined && now - hit.at < AUTH_CACHE_MS) return hit.outcome;
  if (authCache.size >= AUTH_CACHE_MAX) {
    for (const [k, v] of authCache) if (now - v.at >= AUTH_CACHE_MS) authCache.delete(k);
    if (authCache.size >= AUTH_CACHE_MAX) authCache.clear();
  }
  const outcome = (async (): Promise<AuthOutcome> => {
    const r = await engine.call(event, "s".repeat(args.length), args);
    switch (r.kind) {
      case "ok":
        return fromPolicyValue(r.values[0], fallback);
      case "none":
        return fromPolicyValue(false, fallback);
      default:
        diag.error("kumod::http", `${event} failed: ${r.kind === "error" ? r.message : r.code}`);
        return { kind: "error" };
    }
  })();
  authCache.set(key, { at: now, outcome });
  // Errors are not remembered: the next request asks the policy again.
  void outcome.then((o) => {
    if (o.kind === "error") authCache.delete(key);
  });
  return outcome;
}

/**
 * Establish the caller's AuthInfo (§1.1). Returns a Response when the
 * request must stop here (bad header, bad credential, policy failure).
 */
export async function identify(
  c: Context<HttpEnv>,
  services: HttpServices,
): Promise<AuthInfo | Response> {
  const ip = peerIp(c);
  const auth: AuthInfo = { peerAddress: ip, identities: [], groups: [] };
  if (services.listener.config.trustedHosts.contains(ip)) auth.groups.push(TRUSTED_IP_GROUP);
  const header = c.req.header("authorization");
  if (header === undefined) return auth;
  // deno-lint-ignore no-control-regex
  if (/[^\x00-\x7f]/.test(header)) return text(c, 400, "Malformed Authorization header");
  const sp = header.indexOf(" ");
  const scheme = sp < 0 ? header : header.slice(0, sp);
  const rest = sp < 0 ? "" : header.slice(sp + 1).trim();
  const engine = services.reception.engine;
  let outcome: AuthOutcome;
  if (scheme.toLowerCase() === "basic") {
    const decoded = decodeBase64Utf8(rest);
    if (decoded === null) return text(c, 400, "Malformed or unsupported Authorization header");
    const colon = decoded.indexOf(":");
    const user = colon < 0 ? decoded : decoded.slice(0, colon);
    const password = colon < 0 ? null : decoded.slice(colon + 1);
    outcome = await validate(engine, "http_server_validate_auth_basic", [user, password], {
      identity: user,
      context: "HttpBasicAuth",
    });
    if (outcome.kind === "ok") auth.basicUser = user;
  } else if (scheme.toLowerCase() === "bearer") {
    outcome = await validate(engine, "http_server_validate_auth_bearer", [rest], {
      identity: rest,
      context: "BearerToken",
    });
  } else {
    return text(c, 400, "Malformed or unsupported Authorization header");
  }
  if (outcome.kind === "error") return text(c, 500, "try again later");
  if (outcome.kind === "denied") return text(c, 401, outcome.text);
  auth.identities.push(...outcome.identities);
  for (const g of outcome.groups) if (!auth.groups.includes(g)) auth.groups.push(g);
  return auth;
}

/** Whether the built-in ACL lets `auth` through `rule`. */
export function permits(rule: AccessRule, auth: AuthInfo): boolean {
  switch (rule) {
    case "anyone":
      return true;
    case "trusted":
      return auth.groups.includes(TRUSTED_IP_GROUP);
    case "inject":
      return auth.groups.includes(TRUSTED_IP_GROUP) || auth.identities.length > 0;
  }
}

/**
 * The access middleware of one route: identify the caller, apply `rule`,
 * and leave the AuthInfo in `c.get("auth")` for the handler.
 *
 * @example
 * ```ts
 * app.get("/metrics", authorize(services, "trusted"), (c) => c.text("..."));
 * ```
 */
export function authorize(services: HttpServices, rule: AccessRule): MiddlewareHandler<HttpEnv> {
  return async function accessRule(c, next) {
    if (rule === "anyone") {
      c.set("auth", { peerAddress: peerIp(c), identities: [], groups: [] });
      return await next();
    }
    const auth = await identify(c, services);
    if (auth instanceof Response) return auth;
    if (!permits(rule, auth)) {
      const resource = `http_listener/${services.listener.address}${c.req.path}`;
      return c.text(`${authInfoText(auth)} not permitted ${c.req.method} on ${resource}`, 401);
    }
    c.set("auth", auth);
    await next();
  };
}

/** Forget cached credential results (tests; `bump_config_epoch`). */
export function clearAuthCache(): void {
  authCache.clear();
}

const clearedBy = new WeakSet<PolicyEngine>();

/**
 * Clear the credential cache whenever `engine`'s config epoch is bumped
 * (`POST /api/admin/bump-config-epoch`, `kumo.bump_config_epoch`, a changed
 * policy file), so that an edited `http_server_validate_auth_*` handler
 * decides the next request. Registers once per engine.
 *
 * @example
 * ```ts
 * clearAuthCacheOnEpochBump(services.reception.engine);
 * ```
 */
export function clearAuthCacheOnEpochBump(engine: PolicyEngine): void {
  if (clearedBy.has(engine)) return;
  clearedBy.add(engine);
  engine.onEpochBump.push(() => clearAuthCache());
}
