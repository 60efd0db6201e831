/**
 * `POST /api/admin/bump-config-epoch` (http-api §6.8): bump the config
 * epoch — pooled Lua contexts are retired and `Epoch` configs re-resolved.
 * No body needed (one is ignored); 200 with an empty body.
 *
 * Place on the path: beside it, on the policy engine. Trusted hosts only.
 *
 * @module
 */

import type { Hono } from "hono";
import { authorize, type HttpEnv } from "../access_rules.ts";
import type { HttpServices } from "../http_services.ts";
import { handle } from "./admin_request.ts";

/**
 * Register `POST /api/admin/bump-config-epoch`.
 *
 * @example
 * ```ts
 * mountBumpConfigEpoch(app, services);
 * ```
 */
export function mountBumpConfigEpoch(app: Hono<HttpEnv>, services: HttpServices): void {
  app.post("/api/admin/bump-config-epoch", authorize(services, "trusted"), () =>
    handle(() => {
      services.reception.engine.bumpEpoch();
      return new Response(null, { status: 200 });
    }));
}
