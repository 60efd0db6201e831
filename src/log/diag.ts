/**
 * Diagnostic logger: leveled operator messages on stderr (not the delivery
 * logs), filtered like Rust `tracing`'s EnvFilter (`KUMOD_LOG`).
 *
 * Place on the mail's path: beside it. Every stage calls `diag.info(target,
 * msg)`; the filter decides per target. Hot paths must guard expensive
 * formatting with `diag.enabled(target, level)`; a disabled call costs one
 * cached map lookup. It must never throw at a caller for an I/O problem.
 *
 * @module
 */

import { ConfigError } from "../util/config_error.ts";

/** Diagnostic levels, most severe first. */
export type DiagLevel = "error" | "warn" | "info" | "debug" | "trace";

/** Output style (`--diag-format`); `compact`/`pretty` print like `full`. */
export type DiagFormat = "full" | "compact" | "pretty" | "json";

/** Numeric verbosity: 0 = off, 1 = error … 5 = trace. */
const LEVEL_NUM: Record<string, number> = {
  off: 0,
  error: 1,
  warn: 2,
  info: 3,
  debug: 4,
  trace: 5,
  "0": 0,
  "1": 1,
  "2": 2,
  "3": 3,
  "4": 4,
  "5": 5,
};

const LEVEL_LABEL = ["", "ERROR", " WARN", " INFO", "DEBUG", "TRACE"];

/** One `target=level` directive. */
export interface DiagDirective {
  target: string;
  /** 0 = off … 5 = trace. */
  level: number;
}

/** A parsed filter: directives sorted by target length, longest first. */
export interface DiagFilter {
  /** Level for targets no directive matches (0 = off). */
  defaultLevel: number;
  directives: DiagDirective[];
  /** The spec it was parsed from. */
  spec: string;
}

function parseLevel(word: string, spec: string): number {
  const n = LEVEL_NUM[word.trim().toLowerCase()];
  if (n === undefined) {
    throw new ConfigError(
      `Cannot parse diagnostic filter "${spec}": unknown level "${word.trim()}"`,
      { key: "KUMOD_LOG" },
    );
  }
  return n;
}

/**
 * Parse a `tracing` EnvFilter subset: comma-separated `target=level`
 * directives, a bare `level` as the default, and a bare `target` meaning
 * trace for that target. An empty spec enables `error` (tracing's default).
 *
 * @throws {ConfigError} on an unknown level or unsupported span/field syntax
 * @example
 * ```ts
 * parseDiagFilter("kumod=debug,info");
 * ```
 */
export function parseDiagFilter(spec: string): DiagFilter {
  let defaultLevel = -1;
  const byTarget = new Map<string, number>();
  for (const raw of spec.split(",")) {
    const part = raw.trim();
    if (part === "") continue;
    if (/[\[\]{}\s]/.test(part)) {
      throw new ConfigError(
        `Cannot parse diagnostic filter "${spec}": span and field filters are not supported in "${part}"`,
        { key: "KUMOD_LOG" },
      );
    }
    const eq = part.indexOf("=");
    if (eq < 0) {
      const asLevel = LEVEL_NUM[part.toLowerCase()];
      if (asLevel !== undefined) defaultLevel = asLevel;
      else if (/^[0-9]/.test(part)) parseLevel(part, spec); // "7": throws
      else byTarget.set(part, 5);
      continue;
    }
    const target = part.slice(0, eq);
    if (target === "") {
      throw new ConfigError(`Cannot parse diagnostic filter "${spec}": empty target in "${part}"`, {
        key: "KUMOD_LOG",
      });
    }
    byTarget.set(target, parseLevel(part.slice(eq + 1), spec));
  }
  const directives = [...byTarget].map(([target, level]) => ({ target, level }));
  directives.sort((a, b) => b.target.length - a.target.length);
  if (defaultLevel < 0) defaultLevel = directives.length === 0 ? 1 : 0;
  return { defaultLevel, directives, spec };
}

/** Level (0–5) the filter allows for `target`: the longest matching prefix wins. */
export function filterLevel(filter: DiagFilter, target: string): number {
  const d = filter.directives;
  for (let i = 0; i < d.length; i++) {
    if (target.startsWith(d[i].target)) return d[i].level;
  }
  return filter.defaultLevel;
}

function pad2(n: number): string {
  return n < 10 ? "0" + n : "" + n;
}

/** `YYYY-MM-DDTHH:MM:SS.ffffffZ` (microseconds). */
export function formatDiagTime(epochMs: number): string {
  const whole = Math.floor(epochMs);
  const d = new Date(whole);
  const us = d.getUTCMilliseconds() * 1000 + Math.min(999, Math.floor((epochMs - whole) * 1000));
  return d.getUTCFullYear() + "-" + pad2(d.getUTCMonth() + 1) + "-" + pad2(d.getUTCDate()) +
    "T" + pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes()) + ":" +
    pad2(d.getUTCSeconds()) + "." + String(us).padStart(6, "0") + "Z";
}

/** Options for a {@link DiagLogger}. */
export interface DiagOptions {
  /** Initial filter spec. @default "info" */
  filter?: string;
  /** Output style. @default "full" */
  format?: DiagFormat;
  /** Sink for finished text; @default synchronous write to stderr */
  write?: (text: string) => void;
  /** Clock in epoch ms (tests). @default Date.now with sub-ms fraction */
  now?: () => number;
}

const encoder = new TextEncoder();

function writeStderr(text: string): void {
  let bytes = encoder.encode(text);
  try {
    while (bytes.length > 0) {
      const n = Deno.stderr.writeSync(bytes);
      bytes = bytes.subarray(n);
    }
  } catch {
    // stderr gone: nothing sensible left to do with diagnostics.
  }
}

/** Flush output when the buffer exceeds this many characters. */
const BUFFER_LIMIT = 16 * 1024;

/**
 * Leveled diagnostic logger with a runtime-changeable filter. Output is
 * buffered and written once per tick (microtask), when the buffer is large,
 * on `flush()`, and synchronously at process exit for the shared `diag`.
 *
 * @example
 * ```ts
 * const log = new DiagLogger({ filter: "kumod=debug,info" });
 * if (log.enabled("kumod::smtp_server", "debug")) log.debug("kumod::smtp_server", "EHLO from x");
 * ```
 */
export class DiagLogger {
  #filter: DiagFilter;
  #cache = new Map<string, number>();
  #format: DiagFormat;
  #write: (text: string) => void;
  #now: () => number;
  #buf: string[] = [];
  #bufLen = 0;
  #scheduled = false;

  constructor(options: DiagOptions = {}) {
    this.#filter = parseDiagFilter(options.filter ?? "info");
    this.#format = options.format ?? "full";
    this.#write = options.write ?? writeStderr;
    this.#now = options.now ?? (() => Date.now() + (performance.now() % 1));
  }

  /** Replace the filter (`KUMOD_LOG` syntax). @throws {ConfigError} on a bad spec */
  setFilter(spec: string): void {
    this.#filter = parseDiagFilter(spec);
    this.#cache.clear();
  }

  /** The spec of the filter in force. */
  get filterSpec(): string {
    return this.#filter.spec;
  }

  /** Choose the output style (`--diag-format`). */
  setFormat(format: DiagFormat): void {
    this.#format = format;
  }

  /** Redirect output (e.g. to hourly files for `--diag-log-dir`). */
  setWriter(write: (text: string) => void): void {
    this.flush();
    this.#write = write;
  }

  /** True when a message at `level` for `target` would be written. */
  enabled(target: string, level: DiagLevel): boolean {
    let max = this.#cache.get(target);
    if (max === undefined) {
      max = filterLevel(this.#filter, target);
      if (this.#cache.size > 4096) this.#cache.clear();
      this.#cache.set(target, max);
    }
    return LEVEL_NUM[level] <= max;
  }

  /** Log at `level` (checked against the filter first). */
  log(level: DiagLevel, target: string, message: string): void {
    if (!this.enabled(target, level)) return;
    const n = LEVEL_NUM[level];
    const ts = formatDiagTime(this.#now());
    const line = this.#format === "json"
      ? JSON.stringify({
        timestamp: ts,
        level: LEVEL_LABEL[n].trim(),
        fields: { message },
        target,
      }) + "\n"
      : ts + " " + LEVEL_LABEL[n] + " " + target + ": " + message + "\n";
    this.#buf.push(line);
    this.#bufLen += line.length;
    if (this.#bufLen >= BUFFER_LIMIT) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Log an error. */
  error(target: string, message: string): void {
    this.log("error", target, message);
  }
  /** Log a warning. */
  warn(target: string, message: string): void {
    this.log("warn", target, message);
  }
  /** Log an informational message. */
  info(target: string, message: string): void {
    this.log("info", target, message);
  }
  /** Log a debug message. */
  debug(target: string, message: string): void {
    this.log("debug", target, message);
  }
  /** Log a trace message. */
  trace(target: string, message: string): void {
    this.log("trace", target, message);
  }

  /** Write everything buffered, synchronously. */
  flush(): void {
    this.#scheduled = false;
    if (this.#buf.length === 0) return;
    const text = this.#buf.length === 1 ? this.#buf[0] : this.#buf.join("");
    this.#buf = [];
    this.#bufLen = 0;
    try {
      this.#write(text);
    } catch {
      // A broken sink must not take the server down.
    }
  }
}

/** The process-wide diagnostic logger (filter `info` until main applies `KUMOD_LOG`). */
export const diag: DiagLogger = new DiagLogger();

// Flush synchronously on exit so the last lines (e.g. a fatal error) are not lost.
globalThis.addEventListener?.("unload", () => diag.flush());
