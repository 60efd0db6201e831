/**
 * `msg:dkim_verify([resolver_name])`: verify the DKIM signatures at the top
 * of a message and return one authentication result per signature (at most
 * 10), as upstream (lua-api.md §7.1 long tail).
 *
 * Place on the path: policy (host) → message. The cryptography and
 * canonicalisation are mailauth's verifier; the keys are fetched through
 * kumo's own Resolver (the policy's `configure_resolver`, or a
 * `define_resolver` one by name), never the system's. Each result is
 * `{method = 'dkim', result, reason, props = {header.d, header.i, header.s,
 * header.a, header.b}}` (`header.b`: the first 8 characters of the
 * signature). Classification is mailauth's, except that a body hash that does
 * not match is `fail` and a missing or unusable key is `permerror` (RFC 6376
 * §6.1.2/§6.1.3; mailauth says `neutral` for both); DNS failures are
 * `temperror`.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { dkimVerify } from "mailauth/lib/dkim/verify.js";
import type { Resolver } from "../../dns/resolver.ts";
import { DnsNxDomainError } from "../../dns/resolver.ts";
import type { AuthenticationResult } from "../../message/auth_results.ts";

/** Signatures looked at, as upstream (a bound on work for hostile messages). */
const MAX_SIGNATURES = 10;

/** mailauth's comments for key-record problems (tools.js KEY_ERROR_COMMENTS). */
const KEY_PROBLEMS = new Set([
  "no key",
  "unknown key version",
  "unknown key type",
  "invalid public key",
  "inappropriate hash algorithm",
  "key not for email",
]);

interface MailauthStatus {
  result: string;
  comment?: string;
  header?: { d?: string | false; i?: string | false; s?: string; a?: string; b?: string | false };
}

/** mailauth's TXT resolver interface on top of a kumo Resolver. */
function txtResolver(resolver: Resolver) {
  return async (name: string, rrtype: string): Promise<string[][]> => {
    if (rrtype !== "TXT") {
      throw Object.assign(new Error(`unsupported ${rrtype}`), { code: "ENOTIMP" });
    }
    try {
      const list = await resolver.lookupTxt(name);
      if (list.length === 0) {
        throw Object.assign(new Error(`no TXT for ${name}`), { code: "ENODATA" });
      }
      return list.map((s) => [s]);
    } catch (e) {
      if (e instanceof DnsNxDomainError) {
        throw Object.assign(new Error(`no TXT for ${name}`), { code: "ENOTFOUND" });
      }
      throw e; // timeouts and SERVFAIL: mailauth reports temperror
    }
  };
}

function toResult(signingDomain: string | undefined, status: MailauthStatus): AuthenticationResult {
  let result = status.result;
  const comment = status.comment || undefined;
  if (result === "neutral" && comment === "body hash did not verify") result = "fail";
  else if (result === "neutral" && comment !== undefined && KEY_PROBLEMS.has(comment)) {
    result = "permerror";
  }
  const props: Record<string, string> = {};
  const h = status.header ?? {};
  const d = h.d || signingDomain;
  if (d) props["header.d"] = d;
  if (h.i) props["header.i"] = h.i;
  if (h.s) props["header.s"] = h.s;
  if (h.a) props["header.a"] = h.a;
  if (h.b) props["header.b"] = h.b;
  const r: AuthenticationResult = { method: "dkim", result, props };
  if (comment !== undefined) r.reason = comment;
  return r;
}

/**
 * Verify the DKIM signatures of `data`.
 *
 * @example
 * ```ts
 * const results = await dkimVerifyMessage(msg.getData(), resolver);
 * results[0].result; // "pass"
 * ```
 */
export async function dkimVerifyMessage(
  data: Uint8Array,
  resolver: Resolver,
): Promise<AuthenticationResult[]> {
  const input = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out = await dkimVerify(input, { resolver: txtResolver(resolver) } as never) as {
    results?: { signingDomain?: string; status: MailauthStatus }[];
  };
  return (out.results ?? [])
    .filter((r) => r.status.result !== "none")
    .slice(0, MAX_SIGNATURES)
    .map((r) => toResult(r.signingDomain, r.status));
}
