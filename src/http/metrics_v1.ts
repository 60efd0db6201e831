/**
 * `GET /metrics` (Prometheus text, optional `?prefix=`) and
 * `GET /metrics.json` (kumod's JSON shape) — http-api.md §5.
 *
 * Place on the path: beside it, for Prometheus and `kcli`. Renders the
 * process-wide registry; never changes a metric.
 *
 * @module
 */

import type { Context } from "hono";
import type { HttpServices } from "./http_services.ts";

/**
 * The Prometheus text handler.
 *
 * @example
 * ```ts
 * app.get("/metrics", authorize(services, "trusted"), metricsText(services));
 * ```
 */
export function metricsText(services: HttpServices) {
  return function metrics(c: Context): Response {
    const prefix = c.req.query("prefix") ?? "";
    return c.body(services.metrics.renderText(prefix), 200, {
      "content-type": "text/plain; charset=utf-8",
    });
  };
}

/** The `/metrics.json` handler. */
export function metricsJson(services: HttpServices) {
  return function metricsJsonHandler(c: Context): Response {
    return c.json(services.metrics.renderJson());
  };
}
