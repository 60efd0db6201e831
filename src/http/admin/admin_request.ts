/**
 * Shared plumbing of the admin endpoints (http-api §0, §6): the queue
 * stage's admin side (503 until the spools are open), JSON bodies (415/413/
 * 400 from the reader, 422 for a wrong shape), query-string booleans and
 * integers (400), and `Error: <message>` text answers.
 *
 * Place on the path: between the access rule and each admin handler.
 * Never changes a queue itself.
 *
 * @module
 */

import type { Context } from "hono";
import type { HttpServices } from "../http_services.ts";
import type { HttpEnv } from "../access_rules.ts";
import { HttpError, readJsonBody } from "../request_body.ts";
import { AdminRequestError } from "../../queue/queue_criteria.ts";
import type { QueueAdmin } from "../../queue/queue_admin.ts";

/** The admin side of the queue stage; 503 while the spools are not open yet. */
export function queueAdmin(services: HttpServices): QueueAdmin {
  const qm = services.queues();
  if (!qm) throw new HttpError(503, "Error: the queue stage is not running yet");
  return qm.admin;
}

/**
 * Read the JSON body and give it to `parse`; a shape error becomes 422 with
 * axum's wording.
 *
 * @throws {HttpError} 415, 413, 400 (body), 422 (shape)
 */
export async function readAdminBody<T>(
  c: Context<HttpEnv>,
  services: HttpServices,
  parse: (body: unknown) => T,
): Promise<T> {
  const body = await readJsonBody(c.req.raw, services.listener.config.requestBodyLimit);
  try {
    return parse(body);
  } catch (e) {
    if (e instanceof AdminRequestError) {
      throw new HttpError(
        422,
        `Failed to deserialize the JSON body into the target type: ${e.message}`,
      );
    }
    throw e;
  }
}

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** `{"id": "<uuid>"}` of the DELETE requests. */
export function parseIdRequest(body: unknown): string {
  const id = (body as { id?: unknown } | null)?.id;
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new AdminRequestError("invalid type: expected struct with field `id`");
  }
  if (id === undefined) throw new AdminRequestError("missing field `id`");
  if (typeof id !== "string" || !UUID.test(id)) {
    throw new AdminRequestError(`id: UUID parsing failed: ${JSON.stringify(id)}`);
  }
  return id.toLowerCase();
}

/**
 * A required query-string value.
 *
 * @throws {HttpError} 400 `missing field` when absent
 * @example
 * ```ts
 * const name = queryRequired(c, "queue_name");
 * ```
 */
export function queryRequired(c: Context<HttpEnv>, key: string): string {
  const v = c.req.query(key);
  if (v === undefined) {
    throw new HttpError(400, `Failed to deserialize query string: missing field \`${key}\``);
  }
  return v;
}

/**
 * A query-string boolean (`true`/`false`); absent → false.
 *
 * @throws {HttpError} 400 for anything else
 */
export function queryBool(c: Context<HttpEnv>, key: string): boolean {
  const v = c.req.query(key);
  if (v === undefined) return false;
  if (v === "true") return true;
  if (v === "false") return false;
  throw new HttpError(
    400,
    `Failed to deserialize query string: ${key}: provided string was not \`true\` or \`false\``,
  );
}

/**
 * A query-string non-negative integer; absent → undefined.
 *
 * @throws {HttpError} 400 when not an integer
 */
export function queryInt(c: Context<HttpEnv>, key: string): number | undefined {
  const v = c.req.query(key);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) {
    throw new HttpError(
      400,
      `Failed to deserialize query string: ${key}: invalid digit found in string`,
    );
  }
  return Number(v);
}

/** Answer a thrown error: its own response for HttpError, else 500 `Error: <message>`. */
export function adminErrorResponse(e: unknown): Response {
  if (e instanceof HttpError) return e.getResponse();
  return new HttpError(500, `Error: ${(e as Error)?.message ?? e}`).getResponse();
}

/** Run `fn`, turning thrown errors into their responses. */
export async function handle(fn: () => Promise<Response> | Response): Promise<Response> {
  try {
    return await fn();
  } catch (e) {
    return adminErrorResponse(e);
  }
}

/** A 200 text/plain answer. */
export function textOk(body: string): Response {
  return new Response(body, {
    status: 200,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

/** A 200 JSON answer. */
export function jsonOk(value: unknown): Response {
  return new Response(JSON.stringify(value), {
    status: 200,
    headers: { "content-type": "application/json" },
  });
}
