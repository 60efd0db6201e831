/**
 * The Spool interface: a durable key → bytes store keyed by spool id.
 *
 * On the mail's path a message is written here before the SMTP server (or
 * HTTP inject) replies 250, as two records in two spools — `meta` (envelope +
 * meta JSON) and `data` (raw bytes) — and read back at startup (spool-in).
 * It is removed when the message reaches a final outcome. Modelled on
 * KumoMTA's `crates/spool` trait: narrow, several backends, typed errors.
 *
 * Knows nothing about messages or queues.
 *
 * @module
 */

/** Options of {@linkcode Spool.store}. */
export interface StoreOptions {
  /** Resolve only once the bytes are on stable storage (fsync). */
  sync: boolean;
}

/** One stored record, as enumerated. */
export interface SpoolEntry {
  id: string;
  bytes: Uint8Array;
}

/**
 * A durable store of records keyed by spool id.
 *
 * @example
 * ```ts
 * await spool.store(id, bytes, { sync: true });
 * const back = await spool.load(id); // bytes, or null when absent
 * ```
 */
export interface Spool {
  /** The stored bytes, or `null` when there is no record. */
  load(id: string): Promise<Uint8Array | null>;
  /** Store (or replace) a record atomically; with `sync` it is durable once resolved. */
  store(id: string, bytes: Uint8Array, options: StoreOptions): Promise<void>;
  /** Remove a record; removing a missing record is not an error. */
  remove(id: string): Promise<void>;
  /** Every stored record (order unspecified); safe to run while stores go on. */
  enumerate(): AsyncIterable<SpoolEntry>;
  /** Finish pending writes and release the spool. */
  close(): Promise<void>;
}

/** The two spools a running server needs. */
export interface SpoolPair {
  /** Raw message bytes. */
  data: Spool;
  /** Envelope + meta JSON records. */
  meta: Spool;
}

/** Base class of every spool failure. */
export class SpoolError extends Error {
  /** Spool directory (or other location) concerned. */
  readonly path: string;
  constructor(message: string, path: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SpoolError";
    this.path = path;
  }
}

/** Another live process (or this one) already has the spool open. */
export class SpoolLockedError extends SpoolError {
  /** PID found in the lock file. */
  readonly pid: number;
  constructor(path: string, pid: number) {
    super(`Cannot open spool "${path}": locked by live process ${pid}`, path);
    this.name = "SpoolLockedError";
    this.pid = pid;
  }
}

/** An operation on a spool that was already closed. */
export class SpoolClosedError extends SpoolError {
  constructor(path: string) {
    super(`Cannot use spool "${path}": closed`, path);
    this.name = "SpoolClosedError";
  }
}

/** A key that cannot be a spool id (would escape the spool's layout). */
export class InvalidSpoolIdError extends SpoolError {
  readonly id: string;
  constructor(path: string, id: string) {
    super(`Cannot use spool id "${id}": expected 9 to 64 lowercase hex chars`, path);
    this.name = "InvalidSpoolIdError";
    this.id = id;
  }
}
