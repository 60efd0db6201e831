/**
 * MetricsRegistry: process-wide counters, gauges and histograms with
 * labels, rendered as Prometheus text (`GET /metrics`) and as kumod's
 * `/metrics.json` shape (http-api.md §5).
 *
 * Place on the path: beside it. Every stage increments the handles it got
 * from `src/metrics/kumo_metrics.ts`; `http/` renders them. Incrementing is
 * a hot path: a labelled child is looked up once and kept by the caller
 * (`counter.labels("x")` returns the same object every time), so an
 * increment is one addition. Rendering happens only on scrape. It never does
 * I/O.
 *
 * @module
 */

/** Metric family kind. */
export type MetricKind = "counter" | "gauge" | "histogram";

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

/** One counter or gauge series. */
export class Sample {
  value = 0;
  /** Add `n` (default 1). */
  inc(n = 1): void {
    this.value += n;
  }
  /** Subtract `n` (default 1); gauges only by convention. */
  dec(n = 1): void {
    this.value -= n;
  }
  /** Set the value (gauges). */
  set(v: number): void {
    this.value = v;
  }
}

/** One histogram series: per-bucket counts (not cumulative), sum, count. */
export class HistogramSample {
  readonly buckets: readonly number[];
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(buckets: readonly number[]) {
    this.buckets = buckets;
    this.counts = new Array(buckets.length).fill(0);
  }
  /** Record one observation (seconds). */
  observe(v: number): void {
    this.sum += v;
    this.count++;
    const b = this.buckets;
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]) {
        this.counts[i]++;
        return;
      }
    }
  }
}

type AnySample = Sample | HistogramSample;

/** A metric family: a name, a kind and its labelled series. */
export class MetricFamily<S extends AnySample = AnySample> {
  readonly name: string;
  readonly help: string;
  readonly kind: MetricKind;
  readonly labelNames: readonly string[];
  readonly buckets: readonly number[];
  /** Series keyed by label values joined with `\u0000`. */
  readonly series = new Map<string, { values: string[]; sample: S }>();

  constructor(
    name: string,
    kind: MetricKind,
    help: string,
    labelNames: readonly string[],
    buckets: readonly number[] = DEFAULT_BUCKETS,
  ) {
    this.name = name;
    this.kind = kind;
    this.help = help;
    this.labelNames = labelNames;
    this.buckets = buckets;
  }

  /**
   * The series for these label values (created at zero on first use). Keep
   * the result: it is the same object on every call.
   */
  labels(...values: string[]): S {
    const key = values.length === 1 ? values[0] : values.join("\u0000");
    let s = this.series.get(key);
    if (s === undefined) {
      if (values.length !== this.labelNames.length) {
        throw new TypeError(
          `Cannot use metric "${this.name}" with ${values.length} label values: expected ${this.labelNames.length}`,
        );
      }
      const sample =
        (this.kind === "histogram" ? new HistogramSample(this.buckets) : new Sample()) as S;
      s = { values, sample };
      this.series.set(key, s);
    }
    return s.sample;
  }

  /** Drop one series (e.g. when its queue is reaped). */
  remove(...values: string[]): void {
    this.series.delete(values.join("\u0000"));
  }

  /** Drop every series (gauges recomputed at scrape time). */
  clear(): void {
    this.series.clear();
  }
}

/**
 * The registry of every metric family of the process.
 *
 * @example
 * ```ts
 * const reg = new MetricsRegistry();
 * const rx = reg.counter("total_messages_received", "messages received", ["service"]);
 * rx.labels("http_listener").inc();
 * reg.renderText(); // "# HELP total_messages_received ...\n..."
 * ```
 */
export class MetricsRegistry {
  readonly families = new Map<string, MetricFamily>();
  #collectors: (() => void)[] = [];

  #family<S extends AnySample>(
    name: string,
    kind: MetricKind,
    help: string,
    labelNames: readonly string[],
    buckets?: readonly number[],
  ): MetricFamily<S> {
    const have = this.families.get(name);
    if (have !== undefined) {
      if (have.kind !== kind) {
        throw new TypeError(`Cannot register metric "${name}" as ${kind}: already a ${have.kind}`);
      }
      return have as unknown as MetricFamily<S>;
    }
    const f = new MetricFamily<S>(name, kind, help, labelNames, buckets);
    this.families.set(name, f as unknown as MetricFamily);
    return f;
  }

  /** A counter family (registered once; later calls return the same family). */
  counter(name: string, help: string, labelNames: readonly string[] = []): MetricFamily<Sample> {
    return this.#family<Sample>(name, "counter", help, labelNames);
  }

  /** A gauge family. */
  gauge(name: string, help: string, labelNames: readonly string[] = []): MetricFamily<Sample> {
    return this.#family<Sample>(name, "gauge", help, labelNames);
  }

  /** A histogram family. */
  histogram(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    buckets: readonly number[] = DEFAULT_BUCKETS,
  ): MetricFamily<HistogramSample> {
    return this.#family<HistogramSample>(name, "histogram", help, labelNames, buckets);
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
  renderText(prefix = ""): string {
    this.#collect();
    const out: string[] = [];
    for (const f of this.families.values()) {
      const name = prefix + f.name;
      if (f.help !== "") out.push(`# HELP ${name} ${escapeHelp(f.help)}`);
      out.push(`# TYPE ${name} ${f.kind}`);
      for (const { values, sample } of f.series.values()) {
        const base = labelText(f.labelNames, values);
        if (sample instanceof HistogramSample) {
          let cum = 0;
          for (let i = 0; i < sample.buckets.length; i++) {
            cum += sample.counts[i];
            out.push(
              `${name}_bucket${
                labelText(f.labelNames, values, formatNumber(sample.buckets[i]))
              } ${cum}`,
            );
          }
          out.push(`${name}_bucket${labelText(f.labelNames, values, "+Inf")} ${sample.count}`);
          out.push(`${name}_sum${base} ${formatNumber(sample.sum)}`);
          out.push(`${name}_count${base} ${sample.count}`);
        } else {
          out.push(`${name}${base} ${formatNumber(sample.value)}`);
        }
      }
    }
    return out.join("\n") + "\n";
  }

  /** The `/metrics.json` object (http-api.md §5.2). */
  renderJson(): Record<string, unknown> {
    this.#collect();
    const out: Record<string, unknown> = {};
    for (const f of this.families.values()) {
      const entry: Record<string, unknown> = {};
      if (f.help !== "") entry.help = f.help;
      entry.type = f.kind;
      entry.value = familyJsonValue(f);
      out[f.name] = entry;
    }
    return out;
  }
}

function sampleJson(s: AnySample): unknown {
  if (s instanceof HistogramSample) {
    let cum = 0;
    const bucket: [number, number][] = [];
    for (let i = 0; i < s.buckets.length; i++) {
      cum += s.counts[i];
      bucket.push([s.buckets[i], cum]);
    }
    return { count: s.count, sum: s.sum, avg: s.count === 0 ? 0 : s.sum / s.count, bucket };
  }
  return s.value;
}

function familyJsonValue(f: MetricFamily): unknown {
  if (f.series.size === 0) return null;
  if (f.labelNames.length === 0) {
    const first = f.series.values().next().value!;
    return sampleJson(first.sample);
  }
  if (f.labelNames.length === 1) {
    const byValue: Record<string, unknown> = {};
    for (const { values, sample } of f.series.values()) byValue[values[0]] = sampleJson(sample);
    return { [f.labelNames[0]]: byValue };
  }
  const rows: Record<string, unknown>[] = [];
  for (const { values, sample } of f.series.values()) {
    const row: Record<string, unknown> = {};
    f.labelNames.forEach((n, i) => row[n] = values[i]);
    row["@"] = sampleJson(sample);
    rows.push(row);
  }
  return rows;
}

function escapeHelp(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function escapeLabel(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function labelText(names: readonly string[], values: readonly string[], le?: string): string {
  if (names.length === 0 && le === undefined) return "";
  const parts: string[] = [];
  for (let i = 0; i < names.length; i++) parts.push(`${names[i]}="${escapeLabel(values[i])}"`);
  if (le !== undefined) parts.push(`le="${le}"`);
  return `{${parts.join(",")}}`;
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}
