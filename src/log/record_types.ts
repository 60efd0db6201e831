/**
 * The log record type names (logs.md §2, upstream `RecordType`), listed once
 * for the record writer, the local loggers and the `configure_local_logs`
 * parser (`per_record` keys).
 *
 * Place on the mail's path: beside it; every stage tags the records it logs
 * with one of these. Plain data: never add a name upstream does not have,
 * and never add `Any` here (it is only a `per_record` key).
 *
 * @module
 */

/**
 * All record types, in the order upstream documents them.
 *
 * @example
 * ```ts
 * RECORD_TYPES.includes("Delivery"); // true
 * ```
 */
export const RECORD_TYPES = [
  "Reception",
  "Delivery",
  "Bounce",
  "TransientFailure",
  "Expiration",
  "AdminBounce",
  "OOB",
  "Feedback",
  "Rejection",
  "AdminRebind",
  "DeferredInjectionRebind",
  "Delayed",
  "XferOut",
  "XferIn",
] as const;

/** Every record type string (logs.md §2). `Any` is not a type, only a `per_record` key. */
export type RecordType = typeof RECORD_TYPES[number];
