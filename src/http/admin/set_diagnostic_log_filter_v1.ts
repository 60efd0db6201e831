/**
 * `POST /api/admin/set_diagnostic_log_filter/v1` (http-api §6.9): body
 * `{"filter": "kumod=debug,info"}` replaces the diagnostic log filter;
 * 200 with an empty body, 500 `Error: …` for a filter that does not parse.
 *
 * Place on the path: beside it, on the diagnostic logger. Trusted hosts only.
 *
 * @module
 */

import type { Hono } from "hono";
import { authorize, type HttpEnv } from "../access_rules.ts";
import type { HttpServices } from "../http_services.ts";
import { diag } from "../../log/diag.ts";
import { asObject, reqString } from "../../queue/queue_criteria.ts";
import { handle, readAdminBody } from "./admin_request.ts";

/**
 * Register `POST /api/admin/set_diagnostic_log_filter/v1`.
 *
 * @example
 * ```ts
 * mountSetDiagnosticLogFilterV1(app, services);
 * ```
 */
export function mountSetDiagnosticLogFilterV1(app: Hono<HttpEnv>, services: HttpServices): void {
  app.post(
    "/api/admin/set_diagnostic_log_filter/v1",
    authorize(services, "trusted"),
    (c) =>
      handle(async () => {
        const filter = await readAdminBody(c, services, (b) => reqString(asObject(b), "filter"));
        diag.setFilter(filter);
        diag.info("kumod", `diagnostic log filter set to "${filter}"`);
        return new Response(null, { status: 200 });
      }),
  );
}
