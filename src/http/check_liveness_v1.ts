/**
 * `GET /api/check-liveness/v1` (http-api.md §4): `200 OK` while the server
 * takes mail, `503` with the reason (`shutting down`, `waiting for spool
 * startup`) otherwise. Open to anyone; plain text.
 *
 * Place on the path: beside it, for load balancers. Reads flags only.
 *
 * @module
 */

import type { Context } from "hono";
import type { HttpServices } from "./http_services.ts";

/**
 * The liveness handler.
 *
 * @example
 * ```ts
 * app.get("/api/check-liveness/v1", checkLivenessV1(services));
 * ```
 */
export function checkLivenessV1(services: HttpServices) {
  return function checkLiveness(c: Context): Response {
    const r = services.reception;
    if (r.shuttingDown) return c.text("shutting down", 503);
    if (r.spools === null) return c.text("waiting for spool startup", 503);
    return c.text("OK", 200);
  };
}
