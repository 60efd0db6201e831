/**
 * `GET /api/admin/ready-q-states/v1[?queues=a,b]` (http-api §6.6): ready
 * queues with an active state (`connection_limited`,
 * `connection_rate_throttled`). Deliberate deviation from upstream's
 * inverted filter: `queues` (comma-separated or repeated) keeps only the
 * named queues; none = all.
 *
 * Place on the path: read-only view of the ready queues. Trusted hosts only.
 *
 * @module
 */

import type { Hono } from "hono";
import { authorize, type HttpEnv } from "../access_rules.ts";
import type { HttpServices } from "../http_services.ts";
import { handle, jsonOk, queueAdmin } from "./admin_request.ts";

/**
 * Register `GET /api/admin/ready-q-states/v1`.
 *
 * @example
 * ```ts
 * mountReadyQStatesV1(app, services);
 * ```
 */
export function mountReadyQStatesV1(app: Hono<HttpEnv>, services: HttpServices): void {
  app.get("/api/admin/ready-q-states/v1", authorize(services, "trusted"), (c) =>
    handle(() => {
      const names = (c.req.queries("queues") ?? [])
        .flatMap((q) => q.split(","))
        .map((q) => q.trim())
        .filter((q) => q !== "");
      return jsonOk(queueAdmin(services).readyQueueStates(names));
    }));
}
