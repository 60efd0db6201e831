/**
 * Test support: a throwaway self-signed certificate and key (PEM), made
 * with the openssl CLI (EC P-256, valid 2 days). Used by the SMTP sink, the
 * mini MX and the HTTPS tests. Writes only to a temp dir it removes.
 *
 * @module
 */

/** What to put in the certificate. */
export interface SelfSignedOptions {
  /** Subject common name. */
  cn: string;
  /** `-addext` values, e.g. `subjectAltName=DNS:localhost,IP:127.0.0.1`. */
  extensions?: string[];
}

/**
 * A self-signed certificate for `options.cn`; undefined when openssl is
 * missing or fails.
 *
 * @example
 * ```ts
 * const pem = await selfSignedPem({ cn: "mx.test" }); // { key, cert } | undefined
 * ```
 */
export async function selfSignedPem(
  options: SelfSignedOptions,
): Promise<{ key: string; cert: string } | undefined> {
  const dir = await Deno.makeTempDir({ prefix: "self_signed_" });
  try {
    const out = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
        "-subj",
        `/CN=${options.cn}`,
        "-days",
        "2",
        ...(options.extensions ?? []).flatMap((e) => ["-addext", e]),
      ],
      stdout: "null",
      stderr: "null",
    }).output();
    if (!out.success) return undefined;
    return {
      key: await Deno.readTextFile(`${dir}/key.pem`),
      cert: await Deno.readTextFile(`${dir}/cert.pem`),
    };
  } catch {
    return undefined; // no openssl
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
