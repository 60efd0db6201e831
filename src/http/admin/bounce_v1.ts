/**
 * `/api/admin/bounce/v1` (http-api §6.1): POST makes an admin bounce rule
 * (unknown keys → 422) and sweeps the matching scheduled queues in the
 * background; GET lists the live rules; DELETE `{"id"}` cancels one.
 *
 * Place on the path: an operator's lever on the queue stage; the work is
 * done by `QueueAdmin` (src/queue/queue_admin.ts). Trusted hosts only.
 *
 * @module
 */

import type { Hono } from "hono";
import { authorize, type HttpEnv } from "../access_rules.ts";
import type { HttpServices } from "../http_services.ts";
import { parseBounceRequest } from "../../queue/admin_bounce.ts";
import {
  handle,
  jsonOk,
  parseIdRequest,
  queueAdmin,
  readAdminBody,
  textOk,
} from "./admin_request.ts";

const PATH = "/api/admin/bounce/v1";

/**
 * Register POST/GET/DELETE `/api/admin/bounce/v1`.
 *
 * @example
 * ```ts
 * mountBounceV1(app, services);
 * ```
 */
export function mountBounceV1(app: Hono<HttpEnv>, services: HttpServices): void {
  const trusted = authorize(services, "trusted");
  app.post(PATH, trusted, (c) =>
    handle(async () => {
      const admin = queueAdmin(services);
      const req = await readAdminBody(c, services, (b) => parseBounceRequest(b));
      return jsonOk({ id: admin.bounce(req), bounced: {}, total_bounced: 0 });
    }));
  app.get(PATH, trusted, () => handle(() => jsonOk(queueAdmin(services).listBounces())));
  app.delete(PATH, trusted, (c) =>
    handle(async () => {
      const admin = queueAdmin(services);
      const id = await readAdminBody(c, services, parseIdRequest);
      if (!admin.cancelBounce(id)) {
        return new Response(`bounce entry ${id} not found`, { status: 404 });
      }
      return textOk(`removed ${id}`);
    }));
}
