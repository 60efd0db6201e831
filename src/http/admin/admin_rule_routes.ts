/**
 * The POST/GET/DELETE triple shared by the admin rule endpoints (bounce,
 * suspend, suspend-ready-q; http-api §6.1–§6.3): POST reads a request and
 * makes a rule, GET lists the live rules, DELETE `{"id"}` cancels one
 * (404 `<kind> entry <id> not found`, else 200 `removed <id>`).
 *
 * Place on the path: an operator's lever on the queue stage; each endpoint
 * file names its path and its `QueueAdmin` calls, this file does the HTTP
 * side. Trusted hosts only. Never changes a queue itself.
 *
 * @module
 */

import type { Hono } from "hono";
import { authorize, type HttpEnv } from "../access_rules.ts";
import type { HttpServices } from "../http_services.ts";
import type { QueueAdmin } from "../../queue/queue_admin.ts";
import {
  handle,
  jsonOk,
  parseIdRequest,
  queueAdmin,
  readAdminBody,
  textOk,
} from "./admin_request.ts";

/** One kind of admin rule: where it lives and how `QueueAdmin` makes, lists and cancels it. */
export interface AdminRuleRoutes<T> {
  /** The endpoint path, e.g. `/api/admin/suspend/v1`. */
  path: string;
  /** The word in the DELETE 404 text: `<kind> entry <id> not found`. */
  kind: string;
  /** Read the POST body; throws `AdminRequestError` (→ 422) for a wrong shape. */
  parse: (body: unknown) => T;
  /** Make the rule; the result is the POST's JSON answer. */
  create: (admin: QueueAdmin, req: T) => unknown;
  /** The GET's JSON answer. */
  list: (admin: QueueAdmin) => unknown;
  /** Cancel a rule by id; false when there is none. */
  cancel: (admin: QueueAdmin, id: string) => boolean;
}

/**
 * Register POST/GET/DELETE on `routes.path`, trusted hosts only.
 *
 * @example
 * ```ts
 * mountAdminRuleRoutes(app, services, {
 *   path: "/api/admin/suspend/v1",
 *   kind: "suspend",
 *   parse: parseSuspendRequest,
 *   create: (admin, req) => ({ id: admin.suspend(req) }),
 *   list: (admin) => admin.listSuspensions(),
 *   cancel: (admin, id) => admin.cancelSuspension(id),
 * });
 * ```
 */
export function mountAdminRuleRoutes<T>(
  app: Hono<HttpEnv>,
  services: HttpServices,
  routes: AdminRuleRoutes<T>,
): void {
  const trusted = authorize(services, "trusted");
  app.post(routes.path, trusted, (c) =>
    handle(async () => {
      const admin = queueAdmin(services);
      const req = await readAdminBody(c, services, (b) => routes.parse(b));
      return jsonOk(routes.create(admin, req));
    }));
  app.get(routes.path, trusted, () => handle(() => jsonOk(routes.list(queueAdmin(services)))));
  app.delete(routes.path, trusted, (c) =>
    handle(async () => {
      const admin = queueAdmin(services);
      const id = await readAdminBody(c, services, parseIdRequest);
      if (!routes.cancel(admin, id)) {
        return new Response(`${routes.kind} entry ${id} not found`, { status: 404 });
      }
      return textOk(`removed ${id}`);
    }));
}
