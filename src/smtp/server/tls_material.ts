/**
 * TLS identity of an ESMTP listener for STARTTLS: the configured
 * `tls_certificate` / `tls_private_key` KeySources (both or neither), or a
 * self-signed certificate generated at startup when none is configured
 * (lua-api.md §5.1), turned into a node:tls SecureContext; plus the
 * `tls_required_client_ca` bundle client certificates are checked against.
 *
 * Place on the mail's path: the session asks for the context when a client
 * sends STARTTLS; generation happens once per hostname (the `openssl` CLI,
 * cached for the life of the process) and loaded material is cached for
 * 5 minutes. It never performs the handshake itself (see starttls.ts).
 *
 * @module
 */

import tls from "node:tls";
import { X509Certificate } from "node:crypto";
import type { KeySource } from "../../policy/config/schema.ts";

/** Loaded contexts are reused this long (upstream caches KeySources 5 min). */
const CACHE_MS = 5 * 60_000;

interface CacheEntry {
  at: number;
  ctx: Promise<ServerTls>;
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
  /** CA bundle that client certificates are verified against (mTLS). */
  tlsRequiredClientCa?: KeySource;
}

/** What STARTTLS needs: the context and, with `tls_required_client_ca`, the CAs. */
export interface ServerTls {
  context: tls.SecureContext;
  /** Client-certificate authorities; `null` when no client certificate is asked for. */
  clientCas: X509Certificate[] | null;
}

/**
 * The missing half of a certificate/key pair, or `null` when both or neither
 * are configured. A lone `tls_certificate` or `tls_private_key` is an error,
 * never a silent fall-back to the self-signed identity.
 *
 * @example
 * ```ts
 * tlsPairProblem({ hostname: "mx.test", tlsCertificate: { kind: "file", path: "c.pem" } });
 * // "tls_private_key"
 * ```
 */
export function tlsPairProblem(id: TlsIdentity): "tls_certificate" | "tls_private_key" | null {
  if (id.tlsCertificate !== undefined && id.tlsPrivateKey === undefined) return "tls_private_key";
  if (id.tlsCertificate === undefined && id.tlsPrivateKey !== undefined) return "tls_certificate";
  return null;
}

/** Split a PEM bundle into its certificates. */
function parseCaBundle(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) {
    throw new Error("Cannot load tls_required_client_ca: no PEM certificate found");
  }
  return blocks.map((b) => new X509Certificate(b));
}

/**
 * The TLS identity of a listener (cached 5 minutes per identity).
 *
 * @throws {Error} when only one of `tls_certificate` / `tls_private_key` is
 *   configured, or the material cannot be read
 * @example
 * ```ts
 * const { context, clientCas } = await serverTls({ hostname: "mx.test" });
 * ```
 */
export function serverTls(id: TlsIdentity): Promise<ServerTls> {
  const key = JSON.stringify([
    id.hostname,
    id.tlsCertificate ?? null,
    id.tlsPrivateKey ?? null,
    id.tlsRequiredClientCa ?? null,
  ]);
  const now = Date.now();
  const hit = contexts.get(key);
  if (hit !== undefined && now - hit.at < CACHE_MS) return hit.ctx;
  const ctx = (async (): Promise<ServerTls> => {
    const missing = tlsPairProblem(id);
    if (missing !== null) {
      const other = missing === "tls_certificate" ? "tls_private_key" : "tls_certificate";
      throw new Error(`Cannot use ${other} without ${missing}: both must be configured`);
    }
    let material: { cert: string; key: string };
    if (id.tlsCertificate !== undefined && id.tlsPrivateKey !== undefined) {
      material = {
        cert: await readKeySource(id.tlsCertificate, "certificate"),
        key: await readKeySource(id.tlsPrivateKey, "private key"),
      };
    } else {
      material = await selfSignedCertificate(id.hostname);
    }
    let ca: string | undefined;
    let clientCas: X509Certificate[] | null = null;
    if (id.tlsRequiredClientCa !== undefined) {
      ca = await readKeySource(id.tlsRequiredClientCa, "client CA");
      clientCas = parseCaBundle(ca);
    }
    return { context: tls.createSecureContext({ ...material, ca }), clientCas };
  })();
  contexts.set(key, { at: now, ctx });
  ctx.catch(() => contexts.delete(key));
  return ctx;
}

/**
 * `tls_peer_subject_name` of a client certificate: its subject as
 * `["O=Org", "CN=name"]` when it was issued (directly) by one of `cas` and
 * is within its validity period, else `null` (no certificate, unknown
 * issuer, bad signature, expired). node:tls under Deno does not verify
 * client certificates itself, so the check is done here.
 *
 * @example
 * ```ts
 * const subject = verifiedPeerSubject(socket.getPeerX509Certificate(), clientCas);
 * ```
 */
export function verifiedPeerSubject(
  peer: X509Certificate | undefined,
  cas: readonly X509Certificate[],
  now: number = Date.now(),
): string[] | null {
  if (peer === undefined) return null;
  const from = Date.parse(peer.validFrom);
  const to = Date.parse(peer.validTo);
  if (!(from <= now && now <= to)) return null;
  for (const ca of cas) {
    try {
      if (peer.checkIssued(ca) && peer.verify(ca.publicKey)) {
        return peer.subject.split("\n").filter((p) => p !== "");
      }
    } catch { /* not this CA */ }
  }
  return null;
}
