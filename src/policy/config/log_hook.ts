/**
 * LogHookConfig: the typed result of `kumo.configure_log_hook { ... }`
 * (lua-api §5.5, logs §6): `name` (required, unique), `back_pressure`,
 * `meta`, `headers`, `per_record`, `deferred_spool`.
 *
 * Converted once at init; the running hook lives in `log/log_hook.ts`.
 *
 * @module
 */

import { array, bool, convert, dflt, int, object, req, string } from "./schema.ts";
import { type LogRecordParams, PER_RECORD } from "./local_logs.ts";
import type { RecordType } from "../../log/record_types.ts";

/** A converted `configure_log_hook`. */
export interface LogHookConfig {
  name: string;
  /** Records waiting for `should_enqueue_log_record` before new ones queue up. @default 128000 */
  backPressure: number;
  /** Meta keys to capture; trailing `*` wildcard. @default [] */
  meta: string[];
  /** Header names to capture; trailing `*` wildcard. @default [] */
  headers: string[];
  /** Keyed by record type or `Any`. @default {} */
  perRecord: Partial<Record<RecordType | "Any", LogRecordParams>>;
  /** Queue log messages without writing them to the spool first. @default false */
  deferredSpool: boolean;
}

/** The schema of `configure_log_hook`. */
export const LOG_HOOK = object({
  name: req(string()),
  back_pressure: dflt(int({ min: 1, name: "usize" }), 128000),
  meta: dflt(array(string()), () => []),
  headers: dflt(array(string()), () => []),
  per_record: dflt(PER_RECORD, () => ({})),
  deferred_spool: dflt(bool(), false),
}, { name: "LogHookParams" });

/**
 * Convert a `configure_log_hook` table.
 *
 * @example
 * ```ts
 * parseLogHook({ name: "webhook" }).deferredSpool; // false
 * ```
 */
export function parseLogHook(input: unknown): LogHookConfig {
  return convert(LOG_HOOK, input);
}
