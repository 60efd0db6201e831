/**
 * LocalDiskSpool: the disk backend of the Spool interface, one file per record.
 *
 * On the mail's path it holds each message (meta and data spools) from
 * reception until its final outcome, and replays them at startup. Layout
 * (KumoMTA `local_disk.rs`):
 *
 * - `<path>/data/<aa>/<bb>/<cc>/<dd>/<rest of id>` — records, the first four
 *   byte pairs of the id as directories;
 * - `<path>/new/` — temp files, written then renamed into place (atomic
 *   replace: a crash leaves either the old record, the new one, or a stray
 *   temp file that the next open deletes);
 * - `<path>/lock` — the PID of the owning process. Opening a spool whose lock
 *   names a live process (this one included) fails with SpoolLockedError; a
 *   lock left by a dead process is taken over. (Known limit: a PID reused by
 *   an unrelated live process makes a stale lock look live.)
 *
 * Durability: a store with `sync` (or any store when the spool was opened
 * with `flush`) resolves only after the file and its directory entries are
 * on stable storage. Where Deno FFI can reach libc (Linux, `-A`), that is
 * done with `syncfs(2)` on the spool's filesystem (fs_sync.ts), shared by
 * every store in flight on it — the data and meta spools included: the temp
 * file is written, one `syncfs` makes its bytes durable, it is renamed into
 * place, a second `syncfs` makes the name durable. Stores that arrive while
 * a `syncfs` runs share the next one, so a batch of N messages costs about
 * two `syncfs` calls (one under steady load, as one batch's second call is
 * the next batch's first), not 2N fsyncs. The price: `syncfs` also flushes
 * whatever else is dirty on that filesystem — give the spool its own.
 * Without FFI, stores go through GroupCommit instead: file fdatasyncs in
 * parallel, renames, then one fsync per distinct directory.
 *
 * Operations on one id apply in request order: a store or remove supersedes
 * any earlier store of that id still in flight (its temp file is dropped).
 * I/O goes through node:fs/promises (measured slightly faster than the Deno
 * namespace here for open/fsync/rename), except the record write where
 * syncfs serves: `Deno.writeFile` opens, writes and closes in one op (one
 * hop to a blocking thread instead of three), and the directories of a
 * record come from one recursive mkdir of the leaf.
 *
 * Knows bytes and ids only, never messages or queues.
 *
 * @module
 */

import * as fsp from "node:fs/promises";
import process from "node:process";
import { GroupCommit } from "./group_commit.ts";
import { coalesce, type FsSync, openFsSync } from "./fs_sync.ts";
import {
  InvalidSpoolIdError,
  type Spool,
  SpoolClosedError,
  type SpoolEntry,
  SpoolError,
  SpoolLockedError,
  type StoreOptions,
} from "./spool.ts";

/** Options of {@linkcode LocalDiskSpool.open}. */
export interface LocalDiskSpoolOptions {
  /** fsync every store, as if each asked for `sync`. @default false */
  flush?: boolean;
  /** Extra wait before a group commit starts (ms). @default 0 */
  groupCommitDelayMs?: number;
  /**
   * Use per-file fsync even where `syncfs` is available.
   * @default false
   */
  perFileSync?: boolean;
  /**
   * Replaces the filesystem-wide sync (`syncfs`); it must make every write
   * that completed before the call durable. For tests.
   */
  syncFilesystem?: () => Promise<void>;
}

interface PendingSync {
  fh: fsp.FileHandle;
  id: string;
  seq: number;
  tmp: string;
}

const ID_RE = /^[0-9a-f]{9,64}$/;
const HEX2_RE = /^[0-9a-f]{2}$/;
const DIR_CACHE_MAX = 8192;

function errCode(e: unknown): string | undefined {
  return (e as { code?: string } | null)?.code;
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errCode(e) === "EPERM";
  }
}

/** fsync a directory; one pruned meanwhile by remove() has nothing left to sync. */
async function fsyncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(dir, "r");
  } catch (e) {
    if (errCode(e) === "ENOENT") return;
    throw e;
  }
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Take `<path>/lock` for this process, or throw SpoolLockedError. Shared with
 * the log-structured backend.
 *
 * @example
 * ```ts
 * const lockPath = await acquireLock("/var/spool/kumo/data");
 * ```
 */
export async function acquireLock(path: string): Promise<string> {
  const lockPath = `${path}/lock`;
  const tmp = `${path}/lock.${process.pid}.${crypto.randomUUID()}`;
  await fsp.writeFile(tmp, `${process.pid}\n`);
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        // link() publishes the lock with its content in one atomic step.
        await fsp.link(tmp, lockPath);
        return lockPath;
      } catch (e) {
        if (errCode(e) !== "EEXIST") {
          throw new SpoolError(`Cannot lock spool "${path}": ${(e as Error).message}`, path, {
            cause: e,
          });
        }
      }
      let pid = NaN;
      try {
        pid = parseInt((await fsp.readFile(lockPath, "utf8")).trim(), 10);
      } catch (e) {
        if (errCode(e) === "ENOENT") continue;
        throw e;
      }
      if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) throw new SpoolLockedError(path, pid);
      await fsp.unlink(lockPath).catch(() => {}); // stale: its process is gone
    }
    throw new SpoolError(`Cannot lock spool "${path}": lock file keeps changing`, path);
  } finally {
    await fsp.unlink(tmp).catch(() => {});
  }
}

/**
 * A spool stored as one file per record under a directory.
 *
 * @example
 * ```ts
 * const spool = await LocalDiskSpool.open("/var/spool/kumo/data", { flush: false });
 * await spool.store(id, bytes, { sync: true });
 * await spool.close();
 * ```
 */
export class LocalDiskSpool implements Spool {
  /** Spool directory. */
  readonly path: string;
  readonly flush: boolean;
  #dataDir: string;
  #newDir: string;
  #lockPath: string;
  #closed = false;
  #seq = 0;
  /** Latest operation number per id with an operation in flight. */
  #latest = new Map<string, number>();
  /** Directories known to exist. */
  #knownDirs = new Set<string>();
  /** Directories that gained an entry (a new subdirectory) not yet fsynced. */
  #unsyncedDirs = new Set<string>();
  #inflight = new Set<Promise<unknown>>();
  #gc: GroupCommit<PendingSync>;
  /** The shared filesystem sync, when stores use it (else per-file fsync). */
  #fsSync: FsSync | null = null;
  #fsSyncFn: (() => Promise<void>) | null = null;

  private constructor(path: string, lockPath: string, options: LocalDiskSpoolOptions) {
    this.path = path;
    this.flush = options.flush ?? false;
    this.#dataDir = `${path}/data`;
    this.#newDir = `${path}/new`;
    this.#lockPath = lockPath;
    this.#gc = new GroupCommit((batch) => this.#commit(batch), {
      delayMs: options.groupCommitDelayMs ?? 0,
    });
  }

  /**
   * Open (creating if needed) the spool at `path`: take the lock, then clear
   * temp files left in `new/` by a crash (safe only now, before any store).
   *
   * @throws {SpoolLockedError} when a live process holds the spool.
   */
  static async open(path: string, options: LocalDiskSpoolOptions = {}): Promise<LocalDiskSpool> {
    const root = path.replace(/\/+$/, "") || "/";
    await fsp.mkdir(`${root}/data`, { recursive: true });
    await fsp.mkdir(`${root}/new`, { recursive: true });
    const lockPath = await acquireLock(root);
    const spool = new LocalDiskSpool(root, lockPath, options);
    try {
      for (const name of await fsp.readdir(`${root}/new`)) {
        await fsp.rm(`${root}/new/${name}`, { recursive: true, force: true });
      }
      if (options.syncFilesystem) {
        const injected = coalesce(options.syncFilesystem);
        spool.#fsSyncFn = () => injected.sync();
      } else if (!options.perFileSync) {
        spool.#fsSync = await openFsSync(root);
        const fsSync = spool.#fsSync;
        if (fsSync) spool.#fsSyncFn = () => fsSync.sync();
      }
    } catch (e) {
      await spool.close();
      throw e;
    }
    return spool;
  }

  /**
   * How synced stores are made durable: `"syncfs"` (one filesystem-wide
   * sync shared by every store in flight) or `"fsync"` (per file and directory).
   */
  get syncMode(): "syncfs" | "fsync" {
    return this.#fsSyncFn === null ? "fsync" : "syncfs";
  }

  /**
   * `syncfs` calls made so far on this spool's filesystem, by every spool
   * there (0 in `"fsync"` mode or with an injected `syncFilesystem`).
   */
  get fsSyncCalls(): number {
    return this.#fsSync?.calls ?? 0;
  }

  /** Why an operation on `id` cannot run, if it cannot (reported as a rejection). */
  #refuse(id: string): Error | undefined {
    if (this.#closed) return new SpoolClosedError(this.path);
    if (!ID_RE.test(id)) return new InvalidSpoolIdError(this.path, id);
  }

  /** The four directory levels of an id, outermost first. */
  #levels(id: string): [string, string, string, string] {
    const d1 = `${this.#dataDir}/${id.slice(0, 2)}`;
    const d2 = `${d1}/${id.slice(2, 4)}`;
    const d3 = `${d2}/${id.slice(4, 6)}`;
    return [d1, d2, d3, `${d3}/${id.slice(6, 8)}`];
  }

  #filePath(id: string): string {
    return `${this.#dataDir}/${id.slice(0, 2)}/${id.slice(2, 4)}/${id.slice(4, 6)}/${
      id.slice(6, 8)
    }/${id.slice(8)}`;
  }

  async #ensureDirs(id: string): Promise<void> {
    const levels = this.#levels(id);
    if (this.#knownDirs.has(levels[3])) return;
    if (this.#knownDirs.size > DIR_CACHE_MAX) this.#knownDirs.clear();
    if (this.#fsSyncFn !== null) {
      // syncfs makes new directory entries durable with the record: no
      // directory to remember, so one recursive mkdir of the leaf does
      // (the id's time-ordered layout makes the last two levels new for
      // almost every message; one op instead of two, and no EEXIST errors).
      for (let retries = 0;; retries++) {
        try {
          await fsp.mkdir(levels[3], { recursive: true });
          break;
        } catch (e) {
          // A concurrent remove() pruned a level as it was made: again.
          if (errCode(e) !== "ENOENT" || retries >= 5) throw e;
        }
      }
      for (const d of levels) this.#knownDirs.add(d);
      return;
    }
    for (let i = 0, retries = 0; i < 4; i++) {
      const dir = levels[i];
      if (this.#knownDirs.has(dir)) continue;
      try {
        await fsp.mkdir(dir);
      } catch (e) {
        // A concurrent remove() may have pruned a parent: start again from the top.
        if (errCode(e) === "ENOENT" && retries++ < 5) {
          for (const d of levels) this.#knownDirs.delete(d);
          i = -1;
          continue;
        }
        if (errCode(e) !== "EEXIST") throw e;
      }
      // Even on EEXIST: a concurrent creator's entry may not be fsynced yet.
      // (syncfs covers directories: nothing to remember then.)
      if (this.#fsSyncFn === null) this.#unsyncedDirs.add(i === 0 ? this.#dataDir : levels[i - 1]);
      this.#knownDirs.add(dir);
    }
  }

  #forget(id: string, seq: number): void {
    if (this.#latest.get(id) === seq) this.#latest.delete(id);
  }

  /** Rename a written temp file into place unless a later operation superseded it. */
  async #publish(id: string, seq: number, tmp: string): Promise<boolean> {
    if (this.#latest.get(id) !== seq) {
      await fsp.unlink(tmp).catch(() => {});
      return false;
    }
    const dest = this.#filePath(id);
    for (let attempt = 0;; attempt++) {
      try {
        await fsp.rename(tmp, dest);
        return true;
      } catch (e) {
        // A concurrent remove() may have pruned the (then empty) directory.
        if (errCode(e) !== "ENOENT" || attempt >= 3) {
          await fsp.unlink(tmp).catch(() => {});
          throw e;
        }
        for (const d of this.#levels(id)) this.#knownDirs.delete(d);
        await this.#ensureDirs(id);
      }
    }
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#inflight.add(p);
    const done = () => this.#inflight.delete(p);
    p.then(done, done);
    return p;
  }

  /** The stored bytes of `id`, or `null`. */
  load(id: string): Promise<Uint8Array | null> {
    const refused = this.#refuse(id);
    if (refused) return Promise.reject(refused);
    return this.#track(
      fsp.readFile(this.#filePath(id)).then(
        (b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength),
        (e) => {
          if (errCode(e) === "ENOENT") return null;
          throw e;
        },
      ),
    );
  }

  /** Store `bytes` under `id` atomically; durable on resolve when `sync` (or `flush`). */
  store(id: string, bytes: Uint8Array, options: StoreOptions): Promise<void> {
    const refused = this.#refuse(id);
    if (refused) return Promise.reject(refused);
    const seq = ++this.#seq;
    this.#latest.set(id, seq);
    return this.#track(this.#store(id, seq, bytes, options.sync || this.flush));
  }

  async #store(id: string, seq: number, bytes: Uint8Array, sync: boolean): Promise<void> {
    const tmp = `${this.#newDir}/${id}.${seq}`;
    try {
      await this.#ensureDirs(id);
      if (!sync || this.#fsSyncFn !== null) {
        // One op (open, write, close on one blocking thread) instead of three.
        try {
          await Deno.writeFile(tmp, bytes);
        } catch (e) {
          await fsp.unlink(tmp).catch(() => {});
          throw e;
        }
      }
      if (sync && this.#fsSyncFn !== null) {
        try {
          await this.#fsSyncFn(); // the temp file's bytes are durable...
        } catch (e) {
          await fsp.unlink(tmp).catch(() => {});
          throw this.#syncError(e);
        }
        // ...before its name is; then the name (and any new directory).
        if (await this.#publish(id, seq, tmp)) {
          await this.#fsSyncFn().catch((e) => {
            throw this.#syncError(e);
          });
        }
      } else if (sync) {
        const fh = await fsp.open(tmp, "w");
        try {
          await fh.writeFile(bytes);
        } catch (e) {
          await fh.close().catch(() => {});
          await fsp.unlink(tmp).catch(() => {});
          throw e;
        }
        await this.#gc.submit({ fh, id, seq, tmp });
      } else {
        await this.#publish(id, seq, tmp);
      }
    } finally {
      this.#forget(id, seq);
    }
  }

  #syncError(e: unknown): SpoolError {
    return new SpoolError(
      `Cannot sync spool "${this.path}": ${(e as Error)?.message ?? e}`,
      this.path,
      {
        cause: e,
      },
    );
  }

  /** One group commit: fsync files, rename them into place, fsync directories. */
  async #commit(batch: PendingSync[]): Promise<void> {
    const synced = await Promise.allSettled(batch.map((p) => p.fh.datasync()));
    await Promise.all(batch.map((p) => p.fh.close().catch(() => {})));
    const failed = synced.find((r) => r.status === "rejected");
    if (failed) {
      await Promise.all(batch.map((p) => fsp.unlink(p.tmp).catch(() => {})));
      throw new SpoolError(
        `Cannot sync spool "${this.path}": ${(failed as PromiseRejectedResult).reason}`,
        this.path,
        { cause: (failed as PromiseRejectedResult).reason },
      );
    }
    const dirs = new Set<string>();
    await Promise.all(batch.map(async (p) => {
      if (await this.#publish(p.id, p.seq, p.tmp)) dirs.add(this.#levels(p.id)[3]);
    }));
    for (const d of this.#unsyncedDirs) dirs.add(d);
    this.#unsyncedDirs.clear();
    await Promise.all([...dirs].map((d) => fsyncDir(d)));
  }

  /** Remove the record of `id` (and its directories once empty). */
  remove(id: string): Promise<void> {
    const refused = this.#refuse(id);
    if (refused) return Promise.reject(refused);
    const seq = ++this.#seq;
    this.#latest.set(id, seq);
    return this.#track(this.#remove(id, seq));
  }

  async #remove(id: string, seq: number): Promise<void> {
    try {
      await fsp.unlink(this.#filePath(id));
    } catch (e) {
      if (errCode(e) !== "ENOENT") throw e;
    } finally {
      this.#forget(id, seq);
    }
    // Prune empty directories bottom-up; the time-based layout leaves about
    // one leaf directory per message otherwise.
    const levels = this.#levels(id);
    for (let i = 3; i >= 0; i--) {
      try {
        await fsp.rmdir(levels[i]);
        this.#knownDirs.delete(levels[i]);
      } catch {
        break; // not empty (or already gone)
      }
    }
  }

  /** Every record under `data/`; temp files in `new/` are never listed. */
  async *enumerate(): AsyncIterable<SpoolEntry> {
    if (this.#closed) throw new SpoolClosedError(this.path);
    const list = async (dir: string): Promise<string[]> => {
      try {
        return await fsp.readdir(dir);
      } catch (e) {
        if (errCode(e) === "ENOENT" || errCode(e) === "ENOTDIR") return [];
        throw e;
      }
    };
    for (const a of await list(this.#dataDir)) {
      if (!HEX2_RE.test(a)) continue;
      for (const b of await list(`${this.#dataDir}/${a}`)) {
        if (!HEX2_RE.test(b)) continue;
        for (const c of await list(`${this.#dataDir}/${a}/${b}`)) {
          if (!HEX2_RE.test(c)) continue;
          const cDir = `${this.#dataDir}/${a}/${b}/${c}`;
          // The time-based layout puts about one record per leaf directory:
          // read the (up to 256) leaves of this level concurrently.
          const leaves = await Promise.all(
            (await list(cDir)).filter((d) => HEX2_RE.test(d)).map(async (d) => {
              const found: SpoolEntry[] = [];
              for (const rest of await list(`${cDir}/${d}`)) {
                const id = a + b + c + d + rest;
                if (!ID_RE.test(id)) continue;
                const bytes = await this.load(id);
                if (bytes !== null) found.push({ id, bytes });
              }
              return found;
            }),
          );
          for (const found of leaves) yield* found;
        }
      }
    }
  }

  /** Wait for pending operations, then release the lock. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
    await this.#gc.drain();
    this.#fsSync?.release();
    try {
      const pid = parseInt((await fsp.readFile(this.#lockPath, "utf8")).trim(), 10);
      if (pid === process.pid) await fsp.unlink(this.#lockPath);
    } catch {
      // lock already gone
    }
  }
}
