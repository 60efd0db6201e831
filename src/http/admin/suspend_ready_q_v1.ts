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
import type { HttpEnv } from "../access_rules.ts";
import type { HttpServices } from "../http_services.ts";
import { parseReadyQueueSuspendRequest } from "../../queue/suspension.ts";
import { mountAdminRuleRoutes } from "./admin_rule_routes.ts";

/**
 * Register POST/GET/DELETE `/api/admin/suspend-ready-q/v1`.
 *
 * @example
 * ```ts
 * mountSuspendReadyQV1(app, services);
 * ```
 */
export function mountSuspendReadyQV1(app: Hono<HttpEnv>, services: HttpServices): void {
  mountAdminRuleRoutes(app, services, {
    path: "/api/admin/suspend-ready-q/v1",
    kind: "suspend-ready-q",
    parse: parseReadyQueueSuspendRequest,
    create: (admin, req) => ({ id: admin.suspendReadyQueue(req) }),
    list: (admin) => admin.listReadySuspensions(),
    cancel: (admin, id) => admin.cancelReadySuspension(id),
  });
}
