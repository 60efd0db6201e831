/**
 * MetricsRegistry: a thin layer over `prom-client` that keeps the
 * process-wide counters, gauges and histograms, renders them as Prometheus
 * text (`GET /metrics`, optional name prefix), as kumod's `/metrics.json`
 * shape (http-api.md §5.2) and as the `--dump-metric-metadata` catalogue.
 *
 * Place on the path: beside it. Families are declared in
 * `src/metrics/kumo_metrics.ts`; stages increment through its named
 * helpers; `http/` renders. Gauges that mirror live state are refreshed by
 * collectors (`onCollect`) just before a render. It never does I/O.
 *
 * @module
 */

import client from "prom-client";

/** Metric family kind. */
export type MetricKind = "counter" | "gauge" | "histogram";

/** A counter family (prom-client). */
export type CounterFamily = client.Counter<string>;
/** A gauge family (prom-client). */
export type GaugeFamily = client.Gauge<string>;
/** A histogram family (prom-client). */
export type HistogramFamily = client.Histogram<string>;

/** Default histogram buckets (seconds), as upstream. */
export const DEFAULT_BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** One entry of `kumo --dump-metric-metadata` (upstream's kumod-metrics.json shape). */
export interface MetricMetadata {
  name: string;
  help: string;
  doc: null;
  metric_type: "Counter" | "Gauge" | "Histogram";
  label_names: string[];
  buckets: number[];
  pruning: "Pruning" | "NonPruning";
}

interface Declared {
  kind: MetricKind;
  labelNames: readonly string[];
  buckets: readonly number[];
  pruning: boolean;
}

/** Options of a family declaration. */
export interface FamilyOptions {
  /** Series disappear when their object (queue, ready queue) goes away. @default false */
  pruning?: boolean;
  /** Histogram upper bounds in seconds. @default DEFAULT_BUCKETS */
  buckets?: readonly number[];
}

/**
 * The registry of every metric family of the process.
 *
 * @example
 * ```ts
 * const reg = new MetricsRegistry();
 * const rx = reg.counter("total_messages_received", "messages received", ["service"]);
 * rx.labels("http_listener").inc();
 * await reg.renderText(); // "# HELP total_messages_received ...\n..."
 * ```
 */
export class MetricsRegistry {
  /** The prom-client registry underneath. */
  readonly prom: client.Registry = new client.Registry();
  #declared = new Map<string, Declared>();
  #collectors: (() => void)[] = [];

  #existing(name: string, kind: MetricKind): client.Metric<string> | undefined {
    const have = this.#declared.get(name);
    if (have === undefined) return undefined;
    if (have.kind !== kind) {
      throw new TypeError(`Cannot register metric "${name}" as ${kind}: already a ${have.kind}`);
    }
    return this.prom.getSingleMetric(name);
  }

  #declare(name: string, kind: MetricKind, labelNames: readonly string[], o: FamilyOptions) {
    this.#declared.set(name, {
      kind,
      labelNames,
      buckets: kind === "histogram" ? (o.buckets ?? DEFAULT_BUCKETS) : [],
      pruning: o.pruning ?? false,
    });
  }

  /** A counter family (registered once; later calls return the same family). */
  counter(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    o: FamilyOptions = {},
  ): CounterFamily {
    const have = this.#existing(name, "counter");
    if (have) return have as CounterFamily;
    this.#declare(name, "counter", labelNames, o);
    return new client.Counter({ name, help, labelNames, registers: [this.prom] });
  }

  /** A gauge family. */
  gauge(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    o: FamilyOptions = {},
  ): GaugeFamily {
    const have = this.#existing(name, "gauge");
    if (have) return have as GaugeFamily;
    this.#declare(name, "gauge", labelNames, o);
    return new client.Gauge({ name, help, labelNames, registers: [this.prom] });
  }

  /** A histogram family (seconds). */
  histogram(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    o: FamilyOptions = {},
  ): HistogramFamily {
    const have = this.#existing(name, "histogram");
    if (have) return have as HistogramFamily;
    this.#declare(name, "histogram", labelNames, o);
    return new client.Histogram({
      name,
      help,
      labelNames,
      buckets: [...(o.buckets ?? DEFAULT_BUCKETS)],
      registers: [this.prom],
    });
  }

  /**
   * Run `fn` before every render (to refresh gauges computed from live
   * state). Returns a function that unregisters it.
   */
  onCollect(fn: () => void): () => void {
    this.#collectors.push(fn);
    return () => {
      this.#collectors = this.#collectors.filter((f) => f !== fn);
    };
  }

  #collect(): void {
    for (const fn of this.#collectors) {
      try {
        fn();
      } catch { /* a broken collector must not break the scrape */ }
    }
  }

  /** Prometheus text exposition 0.0.4; `prefix` is prepended to every name. */
  async renderText(prefix = ""): Promise<string> {
    this.#collect();
    const text = await this.prom.metrics();
    if (prefix === "") return text;
    return text.replace(
      /^(# (?:HELP|TYPE) )?(?=[a-zA-Z_:])/gm,
      (_, comment: string | undefined) => (comment ?? "") + prefix,
    );
  }

  /** The `/metrics.json` object (http-api.md §5.2). */
  async renderJson(): Promise<Record<string, unknown>> {
    this.#collect();
    const out: Record<string, unknown> = {};
    for (const m of await this.prom.getMetricsAsJSON()) {
      const d = this.#declared.get(m.name);
      if (d === undefined) continue;
      const entry: Record<string, unknown> = {};
      if (m.help !== "") entry.help = m.help;
      entry.type = d.kind;
      entry.value = d.kind === "histogram"
        ? jsonValue(d.labelNames, histogramSeries(m.values))
        : jsonValue(d.labelNames, m.values.map((v) => ({ labels: v.labels, value: v.value })));
      out[m.name] = entry;
    }
    return out;
  }

  /** The catalogue for `--dump-metric-metadata`, sorted by name. */
  metadata(): MetricMetadata[] {
    const out: MetricMetadata[] = [];
    for (const m of this.prom.getMetricsAsArray()) {
      const d = this.#declared.get(m.name);
      if (d === undefined) continue;
      out.push({
        name: m.name,
        help: m.help,
        doc: null,
        metric_type: d.kind === "counter" ? "Counter" : d.kind === "gauge" ? "Gauge" : "Histogram",
        label_names: [...d.labelNames],
        buckets: [...d.buckets],
        pruning: d.pruning ? "Pruning" : "NonPruning",
      });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}

type Labels = Partial<Record<string, string | number>>;

interface HistogramJson {
  count: number;
  sum: number;
  avg: number;
  bucket: [number, number][];
}

/** Fold prom-client's `_bucket`/`_sum`/`_count` rows into one object per label set. */
function histogramSeries(
  values: client.MetricValueWithName<string>[],
): { labels: Labels; value: HistogramJson }[] {
  const byKey = new Map<string, { labels: Labels; value: HistogramJson }>();
  for (const v of values) {
    const labels: Labels = {};
    for (const [k, x] of Object.entries(v.labels)) if (k !== "le") labels[k] = x;
    const key = JSON.stringify(labels);
    let s = byKey.get(key);
    if (s === undefined) {
      s = { labels, value: { count: 0, sum: 0, avg: 0, bucket: [] } };
      byKey.set(key, s);
    }
    const name = v.metricName ?? "";
    if (name.endsWith("_bucket")) {
      const le = v.labels.le;
      if (le !== "+Inf") s.value.bucket.push([Number(le), v.value]);
    } else if (name.endsWith("_sum")) s.value.sum = v.value;
    else if (name.endsWith("_count")) s.value.count = v.value;
  }
  for (const s of byKey.values()) {
    s.value.avg = s.value.count === 0 ? 0 : s.value.sum / s.value.count;
  }
  return [...byKey.values()];
}

/** §5.2: no labels → the value; one label → `{label: {v: x}}`; more → rows with `"@"`. */
function jsonValue(
  labelNames: readonly string[],
  series: { labels: Labels; value: unknown }[],
): unknown {
  if (series.length === 0) return null;
  if (labelNames.length === 0) return series[0].value;
  if (labelNames.length === 1) {
    const byValue: Record<string, unknown> = {};
    for (const s of series) byValue[String(s.labels[labelNames[0]] ?? "")] = s.value;
    return { [labelNames[0]]: byValue };
  }
  return series.map((s) => {
    const row: Record<string, unknown> = {};
    for (const n of labelNames) row[n] = String(s.labels[n] ?? "");
    row["@"] = s.value;
    return row;
  });
}
