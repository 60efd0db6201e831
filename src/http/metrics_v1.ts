/**
 * `GET /metrics` (Prometheus text, optional `?prefix=`) and
 * `GET /metrics.json` (kumod's JSON shape) — http-api.md §5.
 *
 * Place on the path: beside it, for Prometheus and `kcli`. Renders the
 * process-wide registry (prom-client underneath); never changes a metric.
 *
 * @module
 */

import type { Context } from "hono";
import type { HttpServices } from "./http_services.ts";

/** Content type of `/metrics` (http-api.md §5.1; the text exposition format 0.0.4). */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; charset=utf-8";

/**
 * The Prometheus text handler.
 *
 * @example
 * ```ts
 * app.get("/metrics", authorize(services, "trusted"), metricsText(services));
 * ```
 */
export function metricsText(services: HttpServices) {
  return async function metrics(c: Context): Promise<Response> {
    const prefix = c.req.query("prefix") ?? "";
    return c.body(await services.metrics.renderText(prefix), 200, {
      "content-type": PROMETHEUS_CONTENT_TYPE,
    });
  };
}

/** The `/metrics.json` handler. */
export function metricsJson(services: HttpServices) {
  return async function metricsJsonHandler(c: Context): Promise<Response> {
    return c.json(await services.metrics.renderJson());
  };
}
