/**
 * `GET /api/check-liveness/v1` (http-api.md §4): `200 OK` while the server
 * takes mail, otherwise `503` with the first reason that applies, in
 * upstream's order: `shutting down`, `load shedding` (memory headroom 0,
 * `src/metrics/memory_limits.ts`), `waiting for spool startup`, `storage is
 * too full` (a spool below its `min_free_space` / `min_free_inodes`). Open
 * to anyone; plain text.
 *
 * Place on the path: beside it, for load balancers. Reads flags only (the
 * disk and memory checks are cached by their owners).
 *
 * @module
 */

import type { Context } from "hono";
import type { HttpServices } from "./http_services.ts";

/**
 * Why the server would refuse new mail right now, or null when it takes
 * mail. The texts are liveness's; inject prefixes `Error: ` and says `disk
 * is too full` for the storage case.
 *
 * @example
 * ```ts
 * refusalReason(services.reception); // null, "shutting down", "load shedding", ...
 * ```
 */
export function refusalReason(
  r: HttpServices["reception"],
): "shutting down" | "load shedding" | "waiting for spool startup" | "storage is too full" | null {
  if (r.shuttingDown) return "shutting down";
  if (r.loadShedding?.()) return "load shedding";
  if (r.spools === null) return "waiting for spool startup";
  if (r.diskTooFull?.()) return "storage is too full";
  return null;
}

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
    const reason = refusalReason(services.reception);
    return reason === null ? c.text("OK", 200) : c.text(reason, 503);
  };
}
