/**
 * The Hono application of one HTTP listener: every route with its access
 * rule (http-api.md §1.3) and its handler (one file per endpoint).
 *
 * | route                         | rule      |
 * |-------------------------------|-----------|
 * | GET  /api/check-liveness/v1   | anyone    |
 * | POST /api/inject/v1           | inject    |
 * | GET  /metrics, /metrics.json  | trusted   |
 * | /api/admin/*                  | trusted (mounted from `admin/mod.ts`) |
 *
 * Unknown paths are 404; responses are gzip/deflate-compressed when the
 * client accepts it. Place on the path: built by `http_listener.ts`,
 * served by `Deno.serve`. It never binds sockets itself.
 *
 * @module
 */

import { Hono } from "hono";
import { compress } from "hono/compress";
import { authorize, clearAuthCacheOnEpochBump, type HttpEnv } from "./access_rules.ts";
import type { HttpServices } from "./http_services.ts";
import { checkLivenessV1 } from "./check_liveness_v1.ts";
import { injectV1 } from "./inject_v1.ts";
import { metricsJson, metricsText } from "./metrics_v1.ts";
import { mountAdminRoutes } from "./admin/mod.ts";
import { diag } from "../log/diag.ts";

/**
 * Build the app for one listener.
 *
 * @example
 * ```ts
 * const app = buildHttpApp(services);
 * Deno.serve({ port: 0 }, (req, info) => app.fetch(req, { remoteAddr: info.remoteAddr }));
 * ```
 */
export function buildHttpApp(services: HttpServices): Hono<HttpEnv> {
  const app = new Hono<HttpEnv>();
  clearAuthCacheOnEpochBump(services.reception.engine);
  app.use("*", compress());
  app.onError((err, c) => {
    diag.error("kumod::http", `${c.req.method} ${c.req.path} failed: ${err}`);
    return c.text(`Error: ${err instanceof Error ? err.message : String(err)}`, 500);
  });

  app.get("/api/check-liveness/v1", checkLivenessV1(services));
  app.post("/api/inject/v1", authorize(services, "inject"), injectV1(services));
  app.get("/metrics", authorize(services, "trusted"), metricsText(services));
  app.get("/metrics.json", authorize(services, "trusted"), metricsJson(services));

  // ---- admin routes (/api/admin/*): registered by src/http/admin/mod.ts ----
  mountAdminRoutes(app, services);
  // ---- end of admin routes ----

  return app;
}
