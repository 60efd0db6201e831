/**
 * Local loggers: `kumo.configure_local_logs { ... }` turned into running
 * writers, and the dispatcher that fans each record out to all of them.
 *
 * Place on the mail's path: producers (SMTP server, queue, egress, HTTP)
 * call `LogDispatcher.submit(record, ctx)`; each `LocalLogger` applies its
 * `per_record` routing, captures meta/headers, serialises (JSON or template)
 * and hands the line to the `SegmentWriter` for its (dir, suffix). It must
 * never throw at a producer for a log I/O problem, and never parse the body
 * unless a header capture list is configured.
 *
 * @module
 */

import nunjucks from "nunjucks";
import { ConfigError } from "../util/config_error.ts";
import {
  captureHeaders,
  captureMeta,
  type CaptureSpec,
  compileCapture,
  type HeaderField,
} from "./capture.ts";
import { diag } from "./diag.ts";
import type { Message } from "../message/message.ts";
import {
  type LogRecord,
  RECORD_TYPES,
  recordToObject,
  type RecordType,
  serializeRecord,
} from "./record.ts";
import { markExistingReadOnly, SegmentWriter } from "./segment_writer.ts";
import { observeLogSubmit } from "../metrics/kumo_metrics.ts"; // [metrics]

/** One `per_record` entry (type name or `Any`); also what `configure_local_logs` parses. */
export interface PerRecordConfig {
  /** false drops records of this type. @default true */
  enable: boolean;
  /** File name suffix for this type's segments. */
  suffix?: string;
  /** Directory for this type (defaults to the logger's `logDir`). */
  logDir?: string;
  /** Jinja template replacing the JSON line; absent = JSON line. */
  template?: string;
  /** Text written at the start of each segment. @default "" */
  segmentHeader: string;
}

/** Parsed `configure_local_logs` parameters (durations in ms). */
export interface LocalLogsConfig {
  logDir: string;
  maxFileSize: number;
  maxSegmentDurationMs?: number;
  compressionLevel: number;
  backPressure: number;
  headers: string[];
  meta: string[];
  perRecord: Record<string, PerRecordConfig>;
  /** Lua event name deciding per message whether to log (wired via `filter`). */
  filterEvent?: string;
}

/** What a producer knows about the message behind a record. */
export interface LogContext {
  /** Message meta (or connection meta for Rejection records). */
  meta: Record<string, unknown>;
  /** All message headers in order; only called when headers are captured. */
  getAllHeaders(): readonly HeaderField[];
  /** The message behind the record, when there is one (for `filter_event`). */
  message?: Message;
}

/**
 * Anything the dispatcher feeds records to: a {@link LocalLogger}, or a log
 * hook (src/log/log_hook.ts).
 */
export interface LogSink {
  /** Take one record; never throws, never blocks the producer. */
  log(record: LogRecord, ctx: LogContext): void;
  /** Resolve when everything taken so far is done. */
  flush(): Promise<void>;
  /** Finish and stop. */
  close(): Promise<void>;
}

/** Runtime hooks for a {@link LocalLogger}. */
export interface LocalLoggerOptions {
  /**
   * Implements `filter_event`: false skips the record for this logger. May be
   * async (a Lua call); records then reach the file when it resolves.
   */
  filter?: (record: LogRecord, ctx: LogContext) => boolean | Promise<boolean>;
  /** Wall clock for segment names (tests). */
  now?: () => number;
}

interface TemplateLike {
  render(ctx: Record<string, unknown>): string;
}

interface Route {
  writer: SegmentWriter;
  template: TemplateLike | null;
}

function compileTemplate(source: string, type: string): TemplateLike {
  try {
    const env = new nunjucks.Environment(null, { autoescape: false, throwOnUndefined: false });
    const t = new nunjucks.Template(source, env, undefined, true) as TemplateLike;
    return t;
  } catch (err) {
    throw new ConfigError(
      `Cannot compile log template for "${type}": ${(err as Error).message}`,
      { key: `per_record.${type}.template` },
    );
  }
}

/**
 * One `configure_local_logs` instance.
 *
 * @example
 * ```ts
 * const logger = new LocalLogger({
 *   logDir: "/var/log/kumo", maxFileSize: 1e9, compressionLevel: 0, backPressure: 128000,
 *   headers: [], meta: ["tenant"], perRecord: {},
 * });
 * logger.log(record, { meta: { tenant: "a" }, getAllHeaders: () => [] });
 * await logger.close();
 * ```
 */
export class LocalLogger implements LogSink {
  readonly config: LocalLogsConfig;
  #routes = new Map<string, Route | null>();
  #writers = new Map<string, SegmentWriter>();
  #meta: CaptureSpec;
  #headers: CaptureSpec;
  #filter: LocalLoggerOptions["filter"];
  #pendingFilters = new Set<Promise<void>>();
  /** [metrics] The `logger` label of this logger's series. */
  readonly #metricName: string;

  constructor(config: LocalLogsConfig, options: LocalLoggerOptions = {}) {
    this.config = config;
    this.#metricName = `dir-${config.logDir}`;
    this.#meta = compileCapture(config.meta, false);
    this.#headers = compileCapture(config.headers, true);
    this.#filter = options.filter;
    for (const key of Object.keys(config.perRecord)) {
      if (key !== "Any" && !(RECORD_TYPES as readonly string[]).includes(key)) {
        throw new ConfigError(`Cannot configure per_record "${key}": unknown record type`, {
          key: `per_record.${key}`,
        });
      }
    }
    for (const type of RECORD_TYPES) {
      const pr = config.perRecord[type] ?? config.perRecord.Any;
      if (pr !== undefined && pr.enable === false) {
        this.#routes.set(type, null);
        continue;
      }
      const dir = pr?.logDir ?? config.logDir;
      const suffix = pr?.suffix ?? "";
      const wkey = dir + "\0" + suffix;
      let writer = this.#writers.get(wkey);
      if (writer === undefined) {
        // Startup: the previous run's files are finished.
        markExistingReadOnly(dir);
        writer = new SegmentWriter({
          dir,
          suffix,
          maxFileSize: config.maxFileSize,
          maxSegmentDurationMs: config.maxSegmentDurationMs,
          compressionLevel: config.compressionLevel,
          segmentHeader: pr?.segmentHeader ?? "",
          now: options.now,
        });
        this.#writers.set(wkey, writer);
      }
      const template = pr?.template ? compileTemplate(pr.template, type) : null;
      this.#routes.set(type, { writer, template });
    }
  }

  /** True when records of `type` are written by this logger. */
  wants(type: RecordType): boolean {
    return this.#routes.get(type) != null;
  }

  /**
   * Log one record. Never throws for I/O problems (they go to the diagnostic
   * log). Hot path: no await unless a `filter_event` is configured.
   */
  log(record: LogRecord, ctx: LogContext): void {
    const route = this.#routes.get(record.type);
    if (!route) return;
    if (this.#filter === undefined) {
      const t0 = performance.now(); // [metrics] log_submit_latency{logger="dir-<path>"}
      this.#write(route, record, ctx);
      observeLogSubmit(this.#metricName, (performance.now() - t0) / 1000);
      return;
    }
    let verdict: boolean | Promise<boolean>;
    try {
      verdict = this.#filter(record, ctx);
    } catch (err) {
      diag.error(
        "kumod::logging",
        `Cannot run log filter_event "${this.config.filterEvent}": ${err}`,
      );
      return;
    }
    if (verdict === true) return this.#write(route, record, ctx);
    if (verdict === false) return;
    const p = verdict.then(
      (ok) => {
        if (ok) this.#write(route, record, ctx);
      },
      (err) => {
        diag.error(
          "kumod::logging",
          `Cannot run log filter_event "${this.config.filterEvent}": ${err}`,
        );
      },
    );
    this.#pendingFilters.add(p);
    p.finally(() => this.#pendingFilters.delete(p));
  }

  #write(route: Route, record: LogRecord, ctx: LogContext): void {
    const captured = {
      meta: captureMeta(this.#meta, ctx.meta),
      headers: captureHeaders(this.#headers, ctx.getAllHeaders),
    };
    let line: string;
    if (route.template === null) {
      line = serializeRecord(record, captured) + "\n";
    } else {
      const obj = recordToObject(record, captured);
      try {
        line = route.template.render({ ...obj, log_record: obj });
      } catch (err) {
        diag.error("kumod::logging", `Cannot render log template for "${record.type}": ${err}`);
        return;
      }
      if (!line.endsWith("\n")) line += "\n";
    }
    try {
      route.writer.write(line);
    } catch (err) {
      // A segment that cannot be opened must not take the process down.
      diag.error("kumod::logging", `Cannot write log record to "${route.writer.dir}": ${err}`);
    }
  }

  /** Resolve when everything logged so far is in its file. */
  async flush(): Promise<void> {
    await Promise.all([...this.#pendingFilters]);
    await Promise.all([...this.#writers.values()].map((w) => w.flush()));
  }

  /** Finish every open segment (made read-only) and stop. */
  async close(): Promise<void> {
    await Promise.all([...this.#pendingFilters]);
    await Promise.all([...this.#writers.values()].map((w) => w.close()));
  }
}

/**
 * Fans each record out to every configured logger (several
 * `configure_local_logs` calls may coexist). Headers are fetched at most
 * once per record, however many loggers capture them.
 *
 * @example
 * ```ts
 * const d = new LogDispatcher();
 * d.add(new LocalLogger(config));
 * d.submit(record, { meta: msg.meta, getAllHeaders: () => msg.headers() });
 * await d.close();
 * ```
 */
export class LogDispatcher {
  #loggers: LogSink[] = [];

  /** Register a logger (or a log hook). */
  add(logger: LogSink): void {
    this.#loggers.push(logger);
  }

  /** Number of registered loggers. */
  get size(): number {
    return this.#loggers.length;
  }

  /** Log a record to every logger. Hot path: returns at once with no loggers. */
  submit(record: LogRecord, ctx: LogContext): void {
    const loggers = this.#loggers;
    if (loggers.length === 0) return;
    if (loggers.length === 1) return loggers[0].log(record, ctx);
    let headers: readonly HeaderField[] | null = null;
    const shared: LogContext = {
      meta: ctx.meta,
      getAllHeaders: () => (headers ??= ctx.getAllHeaders()),
      message: ctx.message,
    };
    for (let i = 0; i < loggers.length; i++) loggers[i].log(record, shared);
  }

  /** Resolve when everything submitted so far is in its file. */
  async flush(): Promise<void> {
    await Promise.all(this.#loggers.map((l) => l.flush()));
  }

  /** Finish all segments of all loggers. */
  async close(): Promise<void> {
    const loggers = this.#loggers;
    this.#loggers = [];
    await Promise.all(loggers.map((l) => l.close()));
  }
}
