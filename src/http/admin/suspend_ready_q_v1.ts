/**
 * `/api/admin/suspend-ready-q/v1` (http-api §6.3): POST suspends one ready
 * queue by exact name (its waiting messages are re-routed; source
 * selection skips it); GET lists; DELETE `{"id"}` cancels.
 *
 * Place on the path: an operator's lever between the scheduled and the
 * ready queues (QueueAdmin). Trusted hosts only.
 *
 * @module
 */

import type { Hono } from "hono";
import { authorize, type HttpEnv } from "../access_rules.ts";
import type { HttpServices } from "../http_services.ts";
import { parseReadyQueueSuspendRequest } from "../../queue/suspension.ts";
import {
  handle,
  jsonOk,
  parseIdRequest,
  queueAdmin,
  readAdminBody,
  textOk,
} from "./admin_request.ts";

const PATH = "/api/admin/suspend-ready-q/v1";

/**
 * Register POST/GET/DELETE `/api/admin/suspend-ready-q/v1`.
 *
 * @example
 * ```ts
 * mountSuspendReadyQV1(app, services);
 * ```
 */
export function mountSuspendReadyQV1(app: Hono<HttpEnv>, services: HttpServices): void {
  const trusted = authorize(services, "trusted");
  app.post(PATH, trusted, (c) =>
    handle(async () => {
      const admin = queueAdmin(services);
      const req = await readAdminBody(c, services, (b) => parseReadyQueueSuspendRequest(b));
      return jsonOk({ id: admin.suspendReadyQueue(req) });
    }));
  app.get(PATH, trusted, () => handle(() => jsonOk(queueAdmin(services).listReadySuspensions())));
  app.delete(PATH, trusted, (c) =>
    handle(async () => {
      const admin = queueAdmin(services);
      const id = await readAdminBody(c, services, parseIdRequest);
      if (!admin.cancelReadySuspension(id)) {
        return new Response(`suspend-ready-q entry ${id} not found`, { status: 404 });
      }
      return textOk(`removed ${id}`);
    }));
}
