/**
 * `/api/admin/suspend/v1` (http-api §6.2): POST suspends matching
 * scheduled queues (due messages get `451 4.4.4 … scheduled queue is
 * suspended` and the normal back-off); GET lists; DELETE `{"id"}` cancels.
 *
 * Place on the path: an operator's lever on the queue stage (QueueAdmin).
 * Trusted hosts only.
 *
 * @module
 */

import type { Hono } from "hono";
import { authorize, type HttpEnv } from "../access_rules.ts";
import type { HttpServices } from "../http_services.ts";
import { parseSuspendRequest } from "../../queue/suspension.ts";
import {
  handle,
  jsonOk,
  parseIdRequest,
  queueAdmin,
  readAdminBody,
  textOk,
} from "./admin_request.ts";

const PATH = "/api/admin/suspend/v1";

/**
 * Register POST/GET/DELETE `/api/admin/suspend/v1`.
 *
 * @example
 * ```ts
 * mountSuspendV1(app, services);
 * ```
 */
export function mountSuspendV1(app: Hono<HttpEnv>, services: HttpServices): void {
  const trusted = authorize(services, "trusted");
  app.post(PATH, trusted, (c) =>
    handle(async () => {
      const admin = queueAdmin(services);
      const req = await readAdminBody(c, services, (b) => parseSuspendRequest(b));
      return jsonOk({ id: admin.suspend(req) });
    }));
  app.get(PATH, trusted, () => handle(() => jsonOk(queueAdmin(services).listSuspensions())));
  app.delete(PATH, trusted, (c) =>
    handle(async () => {
      const admin = queueAdmin(services);
      const id = await readAdminBody(c, services, parseIdRequest);
      if (!admin.cancelSuspension(id)) {
        return new Response(`suspend entry ${id} not found`, { status: 404 });
      }
      return textOk(`removed ${id}`);
    }));
}
