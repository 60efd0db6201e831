/**
 * `GET /api/admin/inspect-message/v1?id=<spool id>[&want_body=true]`
 * (http-api §6.4): the message as stored in the spool — sender,
 * recipient(s), meta, data only when asked, scheduling when set. An
 * unknown id is a 500 `Error: …`. A JSON body (kcli sends `null`) is ignored.
 *
 * Place on the path: read-only view of the spool. Trusted hosts only.
 *
 * @module
 */

import type { Hono } from "hono";
import { authorize, type HttpEnv } from "../access_rules.ts";
import type { HttpServices } from "../http_services.ts";
import { handle, jsonOk, queryBool, queryRequired, queueAdmin } from "./admin_request.ts";

/**
 * Register `GET /api/admin/inspect-message/v1`.
 *
 * @example
 * ```ts
 * mountInspectMessageV1(app, services);
 * ```
 */
export function mountInspectMessageV1(app: Hono<HttpEnv>, services: HttpServices): void {
  app.get(
    "/api/admin/inspect-message/v1",
    authorize(services, "trusted"),
    (c) =>
      handle(async () => {
        const id = queryRequired(c, "id");
        const wantBody = queryBool(c, "want_body");
        return jsonOk(await queueAdmin(services).inspectMessage(id, wantBody));
      }),
  );
}
