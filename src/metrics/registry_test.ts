/**
 * Unit tests for the metrics registry's Prometheus, JSON and metadata output
 * (src/metrics/registry.ts, prom-client underneath). Place on the path:
 * beside it, read by /metrics.
 */
import assert from "node:assert/strict";
import { MetricsRegistry } from "./registry.ts";
import { countOutcome, kumoMetrics, readyQueueService } from "./kumo_metrics.ts";

Deno.test("MetricsRegistry renders counters, gauges and histograms as Prometheus text", async () => {
  const reg = new MetricsRegistry();
  const rx = reg.counter("total_messages_received", "messages received", ["service"]);
  rx.labels("http_listener").inc();
  rx.labels("http_listener").inc(2);
  rx.labels('we"ird\\').inc();
  reg.gauge("memory_usage", "bytes").set(42);
  const h = reg.histogram("lua_event_latency", "latency", ["event"], { buckets: [0.1, 1] });
  h.labels("init").observe(0.05);
  h.labels("init").observe(0.5);
  h.labels("init").observe(5);
  const text = await reg.renderText("kumo_");
  const lines = text.split("\n").filter((l) => l !== "");
  assert.deepEqual(lines, [
    "# HELP kumo_total_messages_received messages received",
    "# TYPE kumo_total_messages_received counter",
    'kumo_total_messages_received{service="http_listener"} 3',
    'kumo_total_messages_received{service="we\\"ird\\\\"} 1',
    "# HELP kumo_memory_usage bytes",
    "# TYPE kumo_memory_usage gauge",
    "kumo_memory_usage 42",
    "# HELP kumo_lua_event_latency latency",
    "# TYPE kumo_lua_event_latency histogram",
    'kumo_lua_event_latency_bucket{le="0.1",event="init"} 1',
    'kumo_lua_event_latency_bucket{le="1",event="init"} 2',
    'kumo_lua_event_latency_bucket{le="+Inf",event="init"} 3',
    'kumo_lua_event_latency_sum{event="init"} 5.55',
    'kumo_lua_event_latency_count{event="init"} 3',
  ]);
  assert.ok(!(await reg.renderText()).includes("kumo_"));
});

Deno.test("MetricsRegistry.renderJson() follows the /metrics.json shape", async () => {
  const reg = new MetricsRegistry();
  reg.counter("a", "help a", ["service"]).labels("x").inc(2);
  reg.gauge("b", "b").set(7);
  reg.counter("c", "c", ["provider", "pool"]).labels("p", "main").inc();
  reg.gauge("d", "d", ["queue"]);
  reg.histogram("e", "e", ["event"], { buckets: [1] }).labels("init").observe(0.5);
  const g = reg.gauge("f", "f", ["queue"]);
  g.labels("q").inc(3);
  g.labels("q").dec(3);
  assert.deepEqual(await reg.renderJson(), {
    a: { help: "help a", type: "counter", value: { service: { x: 2 } } },
    b: { help: "b", type: "gauge", value: 7 },
    c: { help: "c", type: "counter", value: [{ provider: "p", pool: "main", "@": 1 }] },
    d: { help: "d", type: "gauge", value: null },
    e: {
      help: "e",
      type: "histogram",
      value: { event: { init: { count: 1, sum: 0.5, avg: 0.5, bucket: [[1, 1]] } } },
    },
    f: { help: "f", type: "gauge", value: { queue: { q: 0 } } },
  });
});

Deno.test("MetricsRegistry returns the same family and refuses a kind change", () => {
  const reg = new MetricsRegistry();
  const f = reg.counter("x", "x", ["a"]);
  assert.equal(reg.counter("x", "x", ["a"]), f);
  assert.throws(() => f.labels("1", "2"), /label/i);
  assert.throws(() => reg.gauge("x", "x"), /already a counter/);
});

Deno.test("MetricsRegistry.metadata() lists name, help, type, labels and buckets", () => {
  const reg = new MetricsRegistry();
  reg.histogram("z_latency", "how long", ["event"]);
  reg.gauge("ready_count", "ready", ["service"], { pruning: true });
  assert.deepEqual(reg.metadata(), [
    {
      name: "ready_count",
      help: "ready",
      doc: null,
      metric_type: "Gauge",
      label_names: ["service"],
      buckets: [],
      pruning: "Pruning",
    },
    {
      name: "z_latency",
      help: "how long",
      doc: null,
      metric_type: "Histogram",
      label_names: ["event"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      pruning: "NonPruning",
    },
  ]);
});

Deno.test("countOutcome() bumps the roll-up, the ready queue and the provider series", async () => {
  const rq = "unspecified->hook.log_hook@lua:make.unit.hook";
  assert.equal(readyQueueService(rq), `lua:${rq}`);
  assert.equal(
    readyQueueService("unspecified->mx.x.test@smtp_client"),
    "smtp_client:unspecified->mx.x.test@smtp_client",
  );
  const before = await kumoMetrics.totalMessagesDelivered.get();
  const lua = before.values.find((v) => v.labels.service === "lua")?.value ?? 0;
  countOutcome({
    type: "Delivery",
    site: rq,
    provider_name: "unitprov",
    egress_source: "s1",
    egress_pool: "p1",
  });
  countOutcome({ type: "Reception", site: rq });
  const after = await kumoMetrics.totalMessagesDelivered.get();
  assert.equal(after.values.find((v) => v.labels.service === "lua")?.value, lua + 1);
  assert.equal(after.values.find((v) => v.labels.service === `lua:${rq}`)?.value, 1);
  const bp = await kumoMetrics.deliveredByProviderAndSource.get();
  assert.deepEqual(
    bp.values.find((v) => v.labels.provider === "unitprov"),
    { value: 1, labels: { provider: "unitprov", source: "s1", pool: "p1" } },
  );
});
