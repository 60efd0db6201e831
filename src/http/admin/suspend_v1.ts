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
import type { HttpEnv } from "../access_rules.ts";
import type { HttpServices } from "../http_services.ts";
import { parseSuspendRequest } from "../../queue/suspension.ts";
import { mountAdminRuleRoutes } from "./admin_rule_routes.ts";

/**
 * Register POST/GET/DELETE `/api/admin/suspend/v1`.
 *
 * @example
 * ```ts
 * mountSuspendV1(app, services);
 * ```
 */
export function mountSuspendV1(app: Hono<HttpEnv>, services: HttpServices): void {
  mountAdminRuleRoutes(app, services, {
    path: "/api/admin/suspend/v1",
    kind: "suspend",
    parse: parseSuspendRequest,
    create: (admin, req) => ({ id: admin.suspend(req) }),
    list: (admin) => admin.listSuspensions(),
    cancel: (admin, id) => admin.cancelSuspension(id),
  });
}
