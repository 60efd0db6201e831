/**
 * Spool public surface: open the store a `kumo.define_spool{}` call describes.
 *
 * On the mail's path, startup opens the `data` and `meta` spools after policy
 * `init` and before reception is allowed; the queue layer then writes every
 * accepted message through the returned {@linkcode Spool}.
 *
 * `'LocalDisk'` is {@linkcode LocalDiskSpool} (upstream's one-file-per-record
 * layout; synced with `syncfs`, or per file with `KUMO_LOCALDISK_SYNC=fsync`). `'RocksDB'` — upstream's high-throughput option — is
 * {@linkcode LogSpool}, kumo-edge's own append-only segment log (not RocksDB;
 * lua-api.md §5.3 allows a clone to map the kind to its own store): one write
 * and one fdatasync per group commit. `rocks_params` are ignored by the caller.
 *
 * @module
 */

import { ConfigError } from "../util/config_error.ts";
import { LocalDiskSpool } from "./local_disk_spool.ts";
import { LogSpool } from "./log_spool.ts";
import type { Spool } from "./spool.ts";

export { LocalDiskSpool, type LocalDiskSpoolOptions } from "./local_disk_spool.ts";
export { LogSpool, type LogSpoolOptions } from "./log_spool.ts";
export { GroupCommit, type GroupCommitOptions } from "./group_commit.ts";
export {
  InvalidSpoolIdError,
  type Spool,
  SpoolClosedError,
  type SpoolEntry,
  SpoolError,
  SpoolLockedError,
  type SpoolPair,
  type StoreOptions,
} from "./spool.ts";

/** Spool backends named by `kumo.define_spool{kind=...}`. */
export type SpoolKind = "LocalDisk" | "RocksDB";

/** A `kumo.define_spool{}` definition, already typed. */
export interface SpoolDefinition {
  /** `'data'` or `'meta'` (others are accepted and opened too). */
  name: string;
  /** Spool directory. */
  path: string;
  /** @default "LocalDisk" */
  kind?: SpoolKind;
  /** fsync every write. @default false */
  flush?: boolean;
}

/**
 * Open the spool a definition describes.
 *
 * @throws {ConfigError} on an unknown `kind` or an empty `path`.
 * @throws {SpoolLockedError} when another live process holds the directory.
 * @example
 * ```ts
 * const data = await openSpool({ name: "data", path: "/var/spool/kumo/data", kind: "LocalDisk", flush: false });
 * ```
 */
export async function openSpool(def: SpoolDefinition): Promise<Spool> {
  const kind = def.kind ?? "LocalDisk";
  if (kind !== "LocalDisk" && kind !== "RocksDB") {
    throw new ConfigError(`invalid spool kind "${kind}": expected LocalDisk or RocksDB`, {
      key: "kind",
    });
  }
  if (typeof def.path !== "string" || def.path === "") {
    throw new ConfigError(`invalid spool path for spool "${def.name}": empty`, { key: "path" });
  }
  if (kind === "RocksDB") return await LogSpool.open(def.path, { flush: def.flush ?? false });
  return await LocalDiskSpool.open(def.path, {
    flush: def.flush ?? false,
    perFileSync: localDiskSyncEnv() === "fsync",
  });
}

/**
 * `KUMO_LOCALDISK_SYNC`: `fsync` makes LocalDisk spools sync per file even
 * where `syncfs` is available (for a spool on a busy shared filesystem);
 * unset or `syncfs` is the default.
 *
 * @throws {ConfigError} on any other value.
 */
function localDiskSyncEnv(): "syncfs" | "fsync" {
  let v: string | undefined;
  try {
    v = Deno.env.get("KUMO_LOCALDISK_SYNC");
  } catch {
    return "syncfs"; // no env permission: the default
  }
  if (v === undefined || v === "" || v === "syncfs") return "syncfs";
  if (v === "fsync") return "fsync";
  throw new ConfigError(`invalid KUMO_LOCALDISK_SYNC "${v}": expected syncfs or fsync`, {
    key: "KUMO_LOCALDISK_SYNC",
  });
}
