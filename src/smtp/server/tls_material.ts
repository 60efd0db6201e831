/**
 * TLS identity of an ESMTP listener for STARTTLS: the configured
 * `tls_certificate` / `tls_private_key` KeySources, or a self-signed
 * certificate generated at startup when none is configured (lua-api.md
 * §5.1), turned into a node:tls SecureContext.
 *
 * Place on the mail's path: the session asks for the context when a client
 * sends STARTTLS; generation happens once per hostname (the `openssl` CLI,
 * cached for the life of the process) and loaded material is cached for
 * 5 minutes. It never performs the handshake itself (see starttls.ts).
 *
 * @module
 */

import tls from "node:tls";
import type { KeySource } from "../../policy/config/schema.ts";

/** Loaded contexts are reused this long (upstream caches KeySources 5 min). */
const CACHE_MS = 5 * 60_000;

interface CacheEntry {
  at: number;
  ctx: Promise<tls.SecureContext>;
}

const contexts = new Map<string, CacheEntry>();
const selfSigned = new Map<string, Promise<{ cert: string; key: string }>>();

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
 * A self-signed certificate and key for `hostname` (PEM), generated once per
 * process with the `openssl` CLI.
 *
 * @example
 * ```ts
 * const { cert, key } = await selfSignedCertificate("mx.test");
 * ```
 */
export function selfSignedCertificate(hostname: string): Promise<{ cert: string; key: string }> {
  let p = selfSigned.get(hostname);
  if (p === undefined) {
    p = generate(hostname);
    selfSigned.set(hostname, p);
    p.catch(() => selfSigned.delete(hostname));
  }
  return p;
}

async function generate(hostname: string): Promise<{ cert: string; key: string }> {
  const dir = await Deno.makeTempDir({ prefix: "kumo-tls-" });
  try {
    const cn = hostname.replace(/[^A-Za-z0-9.-]/g, "") || "localhost";
    const out = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "3650",
        "-subj",
        `/CN=${cn}`,
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(
        `Cannot generate self-signed certificate for "${cn}": ${
          new TextDecoder().decode(out.stderr)
        }`,
      );
    }
    return {
      cert: await Deno.readTextFile(`${dir}/cert.pem`),
      key: await Deno.readTextFile(`${dir}/key.pem`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Listener settings that select the TLS identity. */
export interface TlsIdentity {
  hostname: string;
  tlsCertificate?: KeySource;
  tlsPrivateKey?: KeySource;
}

/**
 * The SecureContext for a listener's identity (cached).
 *
 * @example
 * ```ts
 * const ctx = await serverSecureContext({ hostname: "mx.test" });
 * ```
 */
export function serverSecureContext(id: TlsIdentity): Promise<tls.SecureContext> {
  const key = JSON.stringify([id.hostname, id.tlsCertificate ?? null, id.tlsPrivateKey ?? null]);
  const now = Date.now();
  const hit = contexts.get(key);
  if (hit !== undefined && now - hit.at < CACHE_MS) return hit.ctx;
  const ctx = (async () => {
    let material: { cert: string; key: string };
    if (id.tlsCertificate !== undefined && id.tlsPrivateKey !== undefined) {
      material = {
        cert: await readKeySource(id.tlsCertificate, "certificate"),
        key: await readKeySource(id.tlsPrivateKey, "private key"),
      };
    } else {
      material = await selfSignedCertificate(id.hostname);
    }
    return tls.createSecureContext(material);
  })();
  contexts.set(key, { at: now, ctx });
  ctx.catch(() => contexts.delete(key));
  return ctx;
}
