/**
 * `POST /api/admin/rebind/v1` (http-api §6.7): set meta from `data` (or
 * call `rebind_message`) on every message of the matching scheduled
 * queues, moving them when their queue name changes. Answers `{}` at once;
 * the work continues in the background.
 *
 * Place on the path: an operator's lever on the scheduled queues
 * (QueueAdmin). Trusted hosts only.
 *
 * @module
 */

import type { Hono } from "hono";
import { authorize, type HttpEnv } from "../access_rules.ts";
import type { HttpServices } from "../http_services.ts";
import { parseRebindRequest } from "../../queue/rebind.ts";
import { diag } from "../../log/diag.ts";
import { handle, jsonOk, queueAdmin, readAdminBody } from "./admin_request.ts";

/**
 * Register `POST /api/admin/rebind/v1`.
 *
 * @example
 * ```ts
 * mountRebindV1(app, services);
 * ```
 */
export function mountRebindV1(app: Hono<HttpEnv>, services: HttpServices): void {
  app.post("/api/admin/rebind/v1", authorize(services, "trusted"), (c) =>
    handle(async () => {
      const admin = queueAdmin(services);
      const req = await readAdminBody(c, services, parseRebindRequest);
      admin.rebind(req).catch((e) => diag.error("kumod::http", `rebind failed: ${e}`));
      return jsonOk({});
    }));
}
