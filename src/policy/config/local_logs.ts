/**
 * LocalLogsConfig: the typed result of `kumo.configure_local_logs { ... }`
 * (lua-api §5.4), including `per_record` settings keyed by record type.
 *
 * Converted once at startup and handed to `log/`. Never opens log files or
 * compiles templates here.
 *
 * @module
 */

import {
  array,
  bool,
  convert,
  custom,
  describeFound,
  dflt,
  duration,
  fail,
  int,
  type Kind,
  object,
  oneOf,
  opt,
  req,
  string,
} from "./schema.ts";
import { MIN_FREE, type MinFree } from "./spool.ts";
import { RECORD_TYPES, type RecordType } from "../../log/record_types.ts";
import type { PerRecordConfig } from "../../log/local_logger.ts";

/** Settings for one record type (or `Any`): the local logger's own per-record shape. */
export type LogRecordParams = PerRecordConfig;

/** A converted `configure_local_logs`. */
export interface LocalLogsConfig {
  logDir: string;
  /** Uncompressed bytes per segment. @default 1_000_000_000 */
  maxFileSize: number;
  /** ms; undefined = unlimited. */
  maxSegmentDuration?: number;
  /** zstd level, 0 = zstd default. @default 0 */
  compressionLevel: number;
  /** @default 128000 */
  backPressure: number;
  /** Header names to capture; trailing `*` = prefix wildcard. @default [] */
  headers: string[];
  /** Meta keys to capture; trailing `*` wildcard. @default [] */
  meta: string[];
  /** Keyed by record type or `Any`. @default {} */
  perRecord: Partial<Record<RecordType | "Any", LogRecordParams>>;
  filterEvent?: string;
  /** @default 10% */
  minFreeSpace: MinFree;
  /** @default 10% */
  minFreeInodes: MinFree;
}

const RECORD_PARAMS = object({
  enable: dflt(bool(), true),
  suffix: opt(string()),
  log_dir: opt(string()),
  template: opt(string()),
  segment_header: dflt(string(), ""),
}, { name: "LogRecordParams" });

const TYPE_NAMES = [...RECORD_TYPES, "Any"] as const;

/** Map keyed by record type name (validated) → per-record params. */
export const PER_RECORD: Kind<Partial<Record<RecordType | "Any", LogRecordParams>>> = custom(
  "a map keyed by record type",
  (v, cx) => {
    if (Array.isArray(v) && v.length === 0) return {};
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      return fail(cx, `invalid type: ${describeFound(v)}, expected a map`);
    }
    const out: Partial<Record<RecordType | "Any", LogRecordParams>> = {};
    for (const [k, x] of Object.entries(v)) {
      if (!(TYPE_NAMES as readonly string[]).includes(k)) {
        fail(cx, `unknown variant \`${k}\`, expected ${oneOf(TYPE_NAMES)}`);
      }
      out[k as RecordType] = RECORD_PARAMS.parse(x, {
        root: cx.root,
        key: `${cx.key}.${k}`,
      });
    }
    return out;
  },
  (m) => {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(m)) if (x) out[k] = RECORD_PARAMS.toJSON(x);
    return out;
  },
);

/** The schema of `configure_local_logs`. */
export const LOCAL_LOGS = object({
  log_dir: req(string()),
  max_file_size: dflt(int({ name: "u64" }), 1_000_000_000),
  max_segment_duration: opt(duration()),
  compression_level: dflt(int({ min: -131072, max: 22, name: "i32" }), 0),
  back_pressure: dflt(int({ name: "usize" }), 128000),
  headers: dflt(array(string()), () => []),
  meta: dflt(array(string()), () => []),
  per_record: dflt(PER_RECORD, () => ({})),
  filter_event: opt(string()),
  min_free_space: dflt(MIN_FREE, (): MinFree => ({ percent: 10 })),
  min_free_inodes: dflt(MIN_FREE, (): MinFree => ({ percent: 10 })),
}, { name: "LogFileParams" });

/**
 * Convert a `configure_local_logs` table.
 *
 * @example
 * ```ts
 * parseLocalLogs({ log_dir: "/var/log/kumo" }).backPressure; // 128000
 * ```
 */
export function parseLocalLogs(input: unknown): LocalLogsConfig {
  return convert(LOCAL_LOGS, input);
}

/** The JSON/Lua-readable form. */
export function localLogsToJSON(x: LocalLogsConfig): Record<string, unknown> {
  return LOCAL_LOGS.toJSON(x);
}
