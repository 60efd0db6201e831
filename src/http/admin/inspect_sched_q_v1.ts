/**
 * `GET /api/admin/inspect-sched-q/v1?queue_name=…[&want_body=true][&limit=N]`
 * (http-api §6.5): a sample of one scheduled queue with its effective
 * config; an unknown queue is 404 `Error: no such queue <name>`.
 *
 * Place on the path: read-only view of the scheduled queues. Trusted hosts only.
 *
 * @module
 */

import type { Hono } from "hono";
import { authorize, type HttpEnv } from "../access_rules.ts";
import type { HttpServices } from "../http_services.ts";
import { HttpError } from "../request_body.ts";
import { handle, jsonOk, queryBool, queryInt, queryRequired, queueAdmin } from "./admin_request.ts";

/**
 * Register `GET /api/admin/inspect-sched-q/v1`.
 *
 * @example
 * ```ts
 * mountInspectSchedQV1(app, services);
 * ```
 */
export function mountInspectSchedQV1(app: Hono<HttpEnv>, services: HttpServices): void {
  app.get(
    "/api/admin/inspect-sched-q/v1",
    authorize(services, "trusted"),
    (c) =>
      handle(async () => {
        const name = queryRequired(c, "queue_name");
        const wantBody = queryBool(c, "want_body");
        const limit = queryInt(c, "limit");
        const view = await queueAdmin(services).inspectScheduledQueue(name, wantBody, limit);
        if (!view) throw new HttpError(404, `Error: no such queue ${name}`);
        return jsonOk(view);
      }),
  );
}
