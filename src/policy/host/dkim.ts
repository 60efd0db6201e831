/**
 * kumo.dkim.*: DKIM signers for policy (`kumo.dkim.rsa_sha256_signer`,
 * `kumo.dkim.ed25519_signer`, lua-api.md §8) and the signing behind
 * `msg:dkim_sign(signer)` (lua-api.md §7.1).
 *
 * Place on the path: policy (host functions) → message. A signer is the
 * typed parameter table plus the loaded private key, cached by parameters
 * for `ttl` (default 5 minutes) so a policy that builds its signer on every
 * message does not re-read and re-parse the key each time. Signing itself
 * is done by the `mailauth` library; this file only maps KumoMTA's
 * parameters onto it and prepends the resulting `DKIM-Signature`.
 *
 * @module
 */

import crypto from "node:crypto";
import { Buffer } from "node:buffer";
import { dkimSign } from "mailauth/lib/dkim/sign.js";
import type { Message } from "../../message/message.ts";
import {
  anyJson,
  bool,
  convert,
  dflt,
  duration,
  enumOf,
  type KeySource,
  keySource,
  number,
  object,
  opt,
  req,
  string,
  stringArray,
} from "../config/schema.ts";

/** Canonicalization names as the policy spells them. */
export type Canonicalization = "Relaxed" | "Simple";

/** A ready signer: what `kumo.dkim.*_signer` returns (wrapped for Lua). */
export class DkimSigner {
  constructor(
    readonly domain: string,
    readonly selector: string,
    readonly headers: readonly string[],
    readonly key: crypto.KeyObject,
    /** The key as PKCS#8 PEM, the form `mailauth` takes. */
    readonly pem: string,
    readonly headerCanonicalization: Canonicalization,
    readonly bodyCanonicalization: Canonicalization,
    /** Signature lifetime in seconds (`x=` tag), or undefined for none. */
    readonly expiration: number | undefined,
    readonly overSign: boolean,
  ) {}

  /** `rsa` or `ed25519`, from the key. */
  get keyType(): string {
    return this.key.asymmetricKeyType ?? "unknown";
  }
}

const CANON = enumOf(["Relaxed", "Simple"] as const);

/** The signer parameter table (unknown keys ignored, as upstream). */
const SIGNER_PARAMS = object({
  domain: req(string()),
  selector: req(string()),
  headers: req(stringArray()),
  key: req(keySource()),
  header_canonicalization: dflt(CANON, "Relaxed"),
  body_canonicalization: dflt(CANON, "Relaxed"),
  expiration: opt(number()),
  over_sign: dflt(bool(), false),
  ttl: dflt(duration(), 300_000),
  atps: opt(anyJson()),
  atpsh: opt(anyJson()),
  agent_user_identifier: opt(anyJson()),
  body_length: dflt(bool(), false),
  reporting: dflt(bool(), false),
}, { name: "SignerParams", ignoreUnknown: true });

const UNSUPPORTED = ["atps", "atpsh", "agent_user_identifier"] as const;

interface CacheEntry {
  expires: number;
  signer: DkimSigner;
}

/** Signers by parameter JSON; bounded, entries expire after their `ttl`. */
const signerCache = new Map<string, CacheEntry>();
const SIGNER_CACHE_CAPACITY = 1024;

function loadKey(src: KeySource): crypto.KeyObject {
  let data: string | Uint8Array;
  switch (src.kind) {
    case "file":
      data = Deno.readFileSync(src.path);
      break;
    case "data":
      data = src.data;
      break;
    default:
      throw new Error(`Cannot load DKIM key from a "${src.kind}" key source: not supported`);
  }
  const text = typeof data === "string" ? data : new TextDecoder().decode(data);
  if (text.includes("-----BEGIN")) return crypto.createPrivateKey(text);
  // DER: PKCS#8 first (Ed25519 and RSA), then PKCS#1 RSA.
  const der = typeof data === "string" ? new TextEncoder().encode(data) : data;
  try {
    return crypto.createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" });
  } catch {
    return crypto.createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs1" });
  }
}

/**
 * Build (or reuse) a signer from a Lua parameter table.
 *
 * @throws {Error} `<param> is not currently supported` for atps, atpsh,
 * agent_user_identifier, `body_length=true`, `reporting=true`; a
 * ConfigError for malformed parameters; an Error when the key cannot be
 * loaded.
 * @example
 * ```ts
 * const signer = makeSigner({ domain: "shop.test", selector: "s1", headers: ["From"], key: "/k.pem" });
 * ```
 */
export function makeSigner(input: unknown): DkimSigner {
  const cacheKey = JSON.stringify(input);
  const now = Date.now();
  const hit = signerCache.get(cacheKey);
  if (hit !== undefined && hit.expires > now) return hit.signer;
  const p = convert(SIGNER_PARAMS, input);
  for (const name of UNSUPPORTED) {
    if (p[name === "agent_user_identifier" ? "agentUserIdentifier" : name] !== undefined) {
      throw new Error(`${name} is not currently supported`);
    }
  }
  if (p.bodyLength) throw new Error("body_length is not currently supported");
  if (p.reporting) throw new Error("reporting is not currently supported");
  let key: crypto.KeyObject;
  try {
    key = loadKey(p.key);
  } catch (e) {
    throw new Error(`Cannot load DKIM key for domain "${p.domain}": ${(e as Error).message}`);
  }
  const type = key.asymmetricKeyType;
  if (type !== "rsa" && type !== "ed25519") {
    throw new Error(`Cannot use DKIM key for domain "${p.domain}": unsupported key type ${type}`);
  }
  const signer = new DkimSigner(
    p.domain,
    p.selector,
    p.headers,
    key,
    key.export({ type: "pkcs8", format: "pem" }) as string,
    p.headerCanonicalization,
    p.bodyCanonicalization,
    p.expiration,
    p.overSign,
  );
  if (signerCache.size >= SIGNER_CACHE_CAPACITY) {
    signerCache.delete(signerCache.keys().next().value!);
  }
  signerCache.set(cacheKey, { expires: now + p.ttl, signer });
  return signer;
}

/**
 * Sign `msg` with `signer` and prepend the `DKIM-Signature` header
 * (`msg:dkim_sign(signer)`).
 *
 * Deviation: `over_sign` is accepted, but the `mailauth` signer lists each
 * signed header once per occurrence (no extra empty instance).
 *
 * @throws {Error} when the message cannot be signed (e.g. no From header).
 * @example
 * ```ts
 * await dkimSignMessage(msg, makeSigner(params));
 * ```
 */
export async function dkimSignMessage(msg: Message, signer: DkimSigner): Promise<void> {
  if (!(signer instanceof DkimSigner)) {
    throw new TypeError("msg:dkim_sign: expected a signer from kumo.dkim.*_signer");
  }
  const data = msg.getData();
  const nowSec = Math.floor(Date.now() / 1000);
  const result = await dkimSign(
    Buffer.from(data.buffer, data.byteOffset, data.byteLength),
    {
      canonicalization:
        `${signer.headerCanonicalization.toLowerCase()}/${signer.bodyCanonicalization.toLowerCase()}`,
      signTime: new Date(nowSec * 1000),
      expires: signer.expiration !== undefined
        ? new Date((nowSec + signer.expiration) * 1000)
        : undefined,
      signatureData: [{
        signingDomain: signer.domain,
        selector: signer.selector,
        privateKey: signer.pem,
        algorithm: `${signer.keyType}-sha256`,
        headerList: signer.headers.join(":"),
      }],
    } as unknown as Parameters<typeof dkimSign>[1],
  );
  if (result.errors.length > 0 || result.signatures === "") {
    const err = result.errors[0]?.err;
    throw new Error(
      `Cannot DKIM-sign message "${msg.id}" for domain "${signer.domain}": ${
        err instanceof Error ? err.message : "no signature produced"
      }`,
    );
  }
  const sig = new TextEncoder().encode(result.signatures);
  const out = new Uint8Array(sig.length + data.length);
  out.set(sig, 0);
  out.set(data, sig.length);
  msg.setData(out);
}

/** The synchronous `kumo.dkim.*` functions. */
export function dkimFunctions(): Record<string, (...args: never[]) => unknown> {
  // Lua sees a signer as `{ <userdata> }` (msg:dkim_sign unwraps element 1).
  const make = ((input: unknown) => [makeSigner(input)]) as (...args: never[]) => unknown;
  return {
    "dkim.rsa_sha256_signer": make,
    "dkim.ed25519_signer": make,
  };
}
