/**
 * Unit tests for the metrics registry's Prometheus and JSON output
 * (src/metrics/registry.ts). Place on the path: beside it, read by /metrics.
 */
import assert from "node:assert/strict";
import { MetricsRegistry } from "./registry.ts";

Deno.test("MetricsRegistry renders counters, gauges and histograms as Prometheus text", () => {
  const reg = new MetricsRegistry();
  const rx = reg.counter("total_messages_received", "messages received", ["service"]);
  rx.labels("http_listener").inc();
  rx.labels("http_listener").inc(2);
  rx.labels('we"ird\\').inc();
  reg.gauge("memory_usage", "bytes").labels().set(42);
  const h = reg.histogram("lua_event_latency", "", ["event"], [0.1, 1]);
  h.labels("init").observe(0.05);
  h.labels("init").observe(0.5);
  h.labels("init").observe(5);
  assert.equal(
    reg.renderText("kumo_"),
    [
      "# HELP kumo_total_messages_received messages received",
      "# TYPE kumo_total_messages_received counter",
      'kumo_total_messages_received{service="http_listener"} 3',
      'kumo_total_messages_received{service="we\\"ird\\\\"} 1',
      "# HELP kumo_memory_usage bytes",
      "# TYPE kumo_memory_usage gauge",
      "kumo_memory_usage 42",
      "# TYPE kumo_lua_event_latency histogram",
      'kumo_lua_event_latency_bucket{event="init",le="0.1"} 1',
      'kumo_lua_event_latency_bucket{event="init",le="1"} 2',
      'kumo_lua_event_latency_bucket{event="init",le="+Inf"} 3',
      'kumo_lua_event_latency_sum{event="init"} 5.55',
      'kumo_lua_event_latency_count{event="init"} 3',
      "",
    ].join("\n"),
  );
});

Deno.test("MetricsRegistry.renderJson() follows the /metrics.json shape", () => {
  const reg = new MetricsRegistry();
  reg.counter("a", "help a", ["service"]).labels("x").inc(2);
  reg.gauge("b", "").labels().set(7);
  reg.counter("c", "", ["provider", "pool"]).labels("p", "main").inc();
  reg.gauge("d", "", ["queue"]);
  reg.histogram("e", "", ["event"], [1]).labels("init").observe(0.5);
  assert.deepEqual(reg.renderJson(), {
    a: { help: "help a", type: "counter", value: { service: { x: 2 } } },
    b: { type: "gauge", value: 7 },
    c: { type: "counter", value: [{ provider: "p", pool: "main", "@": 1 }] },
    d: { type: "gauge", value: null },
    e: {
      type: "histogram",
      value: { event: { init: { count: 1, sum: 0.5, avg: 0.5, bucket: [[1, 1]] } } },
    },
  });
});

Deno.test("MetricFamily.labels() returns the same series and checks the label count", () => {
  const reg = new MetricsRegistry();
  const f = reg.counter("x", "", ["a"]);
  assert.equal(f.labels("1"), f.labels("1"));
  assert.throws(() => f.labels("1", "2"), /expected 1/);
  assert.throws(() => reg.gauge("x", ""), /already a counter/);
});
