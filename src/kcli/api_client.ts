/**
 * The kcli HTTP client (cli.md §4): every request goes to the endpoint with
 * `Content-Type: application/json` — GETs carry the body `null`, like
 * upstream — and a 60 s timeout; a non-2xx answer becomes
 * `Error: request status <code>: <reason>. Response body: <text>`.
 *
 * Place: the admin client, outside the mail's path; it only talks HTTP to a
 * running kumo. Never reads the spool or the policy.
 *
 * @module
 */

import http, { STATUS_CODES } from "node:http";
import https from "node:https";
import type { Buffer } from "node:buffer";

/**
 * One HTTP exchange over node:http — unlike fetch it lets a GET carry a
 * body, which kcli always sends (`null`).
 */
function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  payload: Uint8Array,
): Promise<{ status: number; text: string }> {
  const mod = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { method, headers, timeout: 60_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          text: new TextDecoder().decode(concat(chunks)),
        }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("operation timed out")));
    req.on("error", reject);
    req.end(payload);
  });
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** A failed request; the message is what kcli prints after `Error: `. */
export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/** Where kcli talks to: `--endpoint`, else `KUMO_KCLI_ENDPOINT`, else `http://127.0.0.1:8000`. */
export function resolveEndpoint(flag: string | undefined): string {
  return flag ?? Deno.env.get("KUMO_KCLI_ENDPOINT") ?? "http://127.0.0.1:8000";
}

/**
 * One request to the kumo HTTP API.
 *
 * @example
 * ```ts
 * const api = new ApiClient("http://127.0.0.1:8000");
 * const list = await api.json("GET", "/api/admin/bounce/v1");
 * ```
 */
export class ApiClient {
  readonly endpoint: string;
  constructor(endpoint: string) {
    this.endpoint = endpoint;
  }

  /** Join `path` (and `query`) onto the endpoint. */
  url(path: string, query?: Record<string, string | undefined>): URL {
    const u = new URL(path, this.endpoint.endsWith("/") ? this.endpoint : this.endpoint + "/");
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined) u.searchParams.set(k, v);
    }
    return u;
  }

  /**
   * Send and return the body text of a 2xx answer.
   *
   * @throws {ApiError} for a non-2xx status or a transport failure
   */
  async text(
    method: string,
    path: string,
    body: unknown = null,
    query?: Record<string, string | undefined>,
  ): Promise<string> {
    const url = this.url(path, query);
    const payload = new TextEncoder().encode(JSON.stringify(body));
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "content-length": String(payload.length),
    };
    if (url.username || url.password) {
      headers.authorization = `Basic ${
        btoa(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`)
      }`;
    }
    let res: { status: number; text: string };
    try {
      res = await send(url, method, headers, payload);
    } catch (e) {
      throw new ApiError(0, `error sending request for url (${url}): ${(e as Error).message}`);
    }
    if (res.status < 200 || res.status > 299) {
      const reason = STATUS_CODES[res.status] ?? "";
      throw new ApiError(
        res.status,
        `request status ${res.status}: ${reason}. Response body: ${res.text}`,
      );
    }
    return res.text;
  }

  /** Like {@link text}, parsing the answer as JSON. */
  async json<T = unknown>(
    method: string,
    path: string,
    body: unknown = null,
    query?: Record<string, string | undefined>,
  ): Promise<T> {
    const text = await this.text(method, path, body, query);
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new ApiError(0, `Cannot parse response of ${path} as JSON: ${(e as Error).message}`);
    }
  }
}
