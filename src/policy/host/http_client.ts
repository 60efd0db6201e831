/**
 * `kumo.http.*`: an HTTP client for policy (log hooks, webhooks, lookups).
 *
 * `kumo.http.build_client{ user_agent=, timeout= }` → Client with
 * `:get(url)`, `:post(url)`, `:put(url)`, `:patch(url)`, `:delete(url)`,
 * `:head(url)`, `:request(method, url)`, `:close()`. Each returns a Request
 * builder: `:header(k, v)`, `:headers{...}`, `:basic_auth(user [, pass])`,
 * `:bearer_auth(token)`, `:body(s)`, `:form_url_encoded{...}`,
 * `:timeout(duration)`, then `:send()` (async) → Response with
 * `:status_code()`, `:status_reason()`, `:status_is_success()`,
 * `:status_is_client_error()`, `:status_is_server_error()`, `:text()`,
 * `:bytes()`, `:headers()` (lower-cased name → value; repeated headers
 * joined with `, `), `:content_length()`.
 * `kumo.http.build_url(url, params)` appends query parameters.
 *
 * Place on the path: policy helpers → network (fetch). The body is read in
 * full by `send()`. `connect_websocket` is not provided.
 *
 * @module
 */

import { bytesArg, luaBytes, registerLuaClass, textArg } from "./host_object.ts";
import { parseDuration } from "../../util/duration.ts";

const CLIENT_KEYS = ["user_agent", "timeout", "connection_verbose", "pool_idle_timeout"];

/** A client: defaults shared by its requests. */
export class HttpClient {
  closed = false;
  constructor(readonly userAgent: string | undefined, readonly timeoutMs: number | undefined) {}
}

/** A request being built. */
export class HttpRequest {
  readonly headers = new Headers();
  body: Uint8Array | string | undefined;
  timeoutMs: number | undefined;
  constructor(readonly client: HttpClient, readonly method: string, readonly url: string) {
    if (client.userAgent) this.headers.set("user-agent", client.userAgent);
    this.timeoutMs = client.timeoutMs;
  }
}

/** A received response (body read in full). */
export class HttpResponse {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly headers: Headers,
    readonly body: Uint8Array,
  ) {}
}

const REASONS: Record<number, string> = {
  200: "OK",
  201: "Created",
  202: "Accepted",
  204: "No Content",
  301: "Moved Permanently",
  302: "Found",
  304: "Not Modified",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  422: "Unprocessable Entity",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

function buildClient(params: unknown): HttpClient {
  const p = (params ?? {}) as Record<string, unknown>;
  if (typeof p !== "object" || Array.isArray(p) && p.length > 0) {
    throw new TypeError("kumo.http.build_client: expected a table of options");
  }
  for (const k of Object.keys(p)) {
    if (!CLIENT_KEYS.includes(k)) {
      throw new TypeError(
        `deserialize error: unknown field \`${k}\`, expected one of ${
          CLIENT_KEYS.map((x) => `\`${x}\``).join(", ")
        }`,
      );
    }
  }
  return new HttpClient(
    p.user_agent === undefined ? undefined : String(p.user_agent),
    p.timeout === undefined ? undefined : parseDuration(p.timeout, "timeout"),
  );
}

function request(c: HttpClient, method: string, url: unknown): HttpRequest {
  if (c.closed) throw new Error("Cannot use HTTP client: it is closed");
  const u = textArg(url, "url");
  try {
    new URL(u);
  } catch {
    throw new TypeError(`Cannot make HTTP request to "${u}": invalid URL`);
  }
  return new HttpRequest(c, method, u);
}

async function send(r: HttpRequest): Promise<HttpResponse> {
  const signal = r.timeoutMs !== undefined ? AbortSignal.timeout(r.timeoutMs) : undefined;
  let res: Response;
  try {
    res = await fetch(r.url, {
      method: r.method,
      headers: r.headers,
      body: r.body as BodyInit | undefined,
      signal,
      redirect: "follow",
    });
  } catch (e) {
    throw new Error(`HTTP ${r.method} "${r.url}" failed: ${(e as Error).message}`);
  }
  const body = new Uint8Array(await res.arrayBuffer());
  return new HttpResponse(
    res.status,
    res.statusText || REASONS[res.status] || "",
    res.headers,
    body,
  );
}

const M = (method: string) => (c: HttpClient, url: unknown) => request(c, method, url);

registerLuaClass(HttpClient, {
  name: "HttpClient",
  methods: {
    get: M("GET"),
    post: M("POST"),
    put: M("PUT"),
    patch: M("PATCH"),
    delete: M("DELETE"),
    head: M("HEAD"),
    request: (c, method: unknown, url: unknown) => request(c, String(method).toUpperCase(), url),
    close: (c) => {
      c.closed = true;
    },
  },
});

registerLuaClass(HttpRequest, {
  name: "HttpRequest",
  methods: {
    header: (r, k: unknown, v: unknown) => (r.headers.append(textArg(k), textArg(v)), r),
    headers: (r, t: Record<string, unknown>) => {
      for (const [k, v] of Object.entries(t ?? {})) r.headers.append(k, String(v));
      return r;
    },
    basic_auth: (r, user: unknown, pass?: unknown) => {
      const cred = `${textArg(user)}:${pass === undefined || pass === null ? "" : textArg(pass)}`;
      const b = new TextEncoder().encode(cred);
      r.headers.set("authorization", "Basic " + btoa(String.fromCharCode(...b)));
      return r;
    },
    bearer_auth: (
      r,
      token: unknown,
    ) => (r.headers.set("authorization", `Bearer ${textArg(token)}`), r),
    body: (r, b: unknown) => ((r.body = bytesArg(b, "body")), r),
    form_url_encoded: (r, t: Record<string, unknown>) => {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(t ?? {})) params.append(k, String(v));
      r.body = params.toString();
      r.headers.set("content-type", "application/x-www-form-urlencoded");
      return r;
    },
    timeout: (r, d: unknown) => ((r.timeoutMs = parseDuration(d, "timeout")), r),
  },
  asyncMethods: { send },
});

registerLuaClass(HttpResponse, {
  name: "HttpResponse",
  methods: {
    status_code: (r) => r.status,
    status_reason: (r) => r.reason,
    status_is_success: (r) => r.status >= 200 && r.status < 300,
    status_is_informational: (r) => r.status >= 100 && r.status < 200,
    status_is_redirection: (r) => r.status >= 300 && r.status < 400,
    status_is_client_error: (r) => r.status >= 400 && r.status < 500,
    status_is_server_error: (r) => r.status >= 500 && r.status < 600,
    text: (r) => new TextDecoder().decode(r.body),
    bytes: (r) => luaBytes(r.body),
    content_length: (r) => {
      const v = r.headers.get("content-length");
      return v === null ? r.body.length : Number(v);
    },
    headers: (r) => {
      const out: Record<string, string> = {};
      r.headers.forEach((v, k) => (out[k] = v));
      return out;
    },
  },
});

function buildUrl(url: unknown, params: unknown): string {
  const u = new URL(textArg(url, "url"));
  for (const [k, v] of Object.entries((params ?? {}) as Record<string, unknown>)) {
    u.searchParams.append(k, String(v));
  }
  return u.toString();
}

type Fn = (...args: never[]) => unknown;

/** The `kumo.http.*` functions. */
export const HTTP_FUNCTIONS: Record<string, Fn> = {
  "http.build_client": buildClient as Fn,
  "http.build_url": buildUrl as Fn,
};
