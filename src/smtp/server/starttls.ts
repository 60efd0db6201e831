/**
 * STARTTLS server side (RFC 3207): upgrade an accepted node:net socket to
 * TLS with node:tls (Deno has no server-side `startTls`; notes/platform.md).
 *
 * Place on the mail's path: the session calls it after sending
 * `220 Ready to Start TLS` and discarding every byte the client sent before
 * the handshake (RFC 3207 §4.2 — that is the session's job, via
 * `LineReader.takeBuffered()`). It never writes SMTP replies.
 *
 * @module
 */

import type net from "node:net";
import tls from "node:tls";
import type { X509Certificate } from "node:crypto";

/** Result of a finished handshake. */
export interface TlsUpgrade {
  socket: tls.TLSSocket;
  /** e.g. `TLSv1.3`. */
  protocolVersion: string;
  /** e.g. `TLS_AES_256_GCM_SHA384`. */
  cipher: string;
  /** The client's certificate, when one was asked for and presented (unverified). */
  peerCertificate?: X509Certificate;
}

/**
 * Run the server handshake on `raw`; rejects on failure or after `timeoutMs`.
 * The caller must have removed its `data` listener from `raw` first. With
 * `requestCert` the client is asked for a certificate but not refused
 * without one (`tls_required_client_ca`: verification is the caller's).
 *
 * @example
 * ```ts
 * const { context } = await serverTls(params);
 * const up = await upgradeToTls(socket, context, 60_000);
 * up.socket.on("data", onData);
 * ```
 */
export function upgradeToTls(
  raw: net.Socket,
  secureContext: tls.SecureContext,
  timeoutMs: number,
  requestCert = false,
): Promise<TlsUpgrade> {
  return new Promise((resolve, reject) => {
    const sock = new tls.TLSSocket(raw, {
      isServer: true,
      secureContext,
      requestCert,
      rejectUnauthorized: false,
    });
    let done = false;
    const timer = setTimeout(() => finish(new Error("TLS handshake timed out")), timeoutMs);
    const finish = (err: Error | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.off("secure", onSecure);
      sock.off("error", onError);
      if (err !== null) {
        sock.destroy();
        reject(err);
        return;
      }
      sock.setNoDelay(true);
      let peerCertificate: X509Certificate | undefined;
      if (requestCert) {
        try {
          peerCertificate = sock.getPeerX509Certificate();
        } catch { /* no usable certificate */ }
      }
      resolve({
        socket: sock,
        protocolVersion: sock.getProtocol() ?? "",
        cipher: sock.getCipher()?.standardName ?? sock.getCipher()?.name ?? "",
        peerCertificate,
      });
    };
    const onSecure = () => finish(null);
    const onError = (e: Error) => finish(e);
    sock.once("secure", onSecure);
    sock.once("error", onError);
  });
}
