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
import type { HttpEnv } from "../access_rules.ts";
import type { HttpServices } from "../http_services.ts";
import { parseBounceRequest } from "../../queue/admin_bounce.ts";
import { mountAdminRuleRoutes } from "./admin_rule_routes.ts";

/**
 * Register POST/GET/DELETE `/api/admin/bounce/v1`.
 *
 * @example
 * ```ts
 * mountBounceV1(app, services);
 * ```
 */
export function mountBounceV1(app: Hono<HttpEnv>, services: HttpServices): void {
  mountAdminRuleRoutes(app, services, {
    path: "/api/admin/bounce/v1",
    kind: "bounce",
    parse: parseBounceRequest,
    create: (admin, req) => ({ id: admin.bounce(req), bounced: {}, total_bounced: 0 }),
    list: (admin) => admin.listBounces(),
    cancel: (admin, id) => admin.cancelBounce(id),
  });
}
