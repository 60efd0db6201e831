/**
 * Filesystem-wide sync (`syncfs(2)`) for the LocalDisk spool's group commit,
 * one call serving every spool write in flight on that filesystem.
 *
 * Place on the path: spool. A LocalDisk record is a file plus directory
 * entries; making each durable costs an fsync of the file and of its
 * directory. `syncfs(fd)` makes *everything* written to the filesystem
 * before the call durable (data, inodes, directory entries) — on Linux it
 * waits for the writeback and, since 5.8, reports writeback errors. So a
 * batch of records needs one call, whatever its size.
 *
 * Calls are coalesced per filesystem (device number), across spools: a
 * request is served by the first `syncfs` that *starts* after it was made;
 * requests that arrive while one runs share the next. The data and meta
 * spools on one filesystem therefore share their syncs.
 *
 * `syncfs` is reached through Deno FFI (`Deno.dlopen` of libc; needs
 * `--allow-ffi`, which `-A` and `deno compile -A` grant). Where that is not
 * possible (not Linux, no FFI permission, no libc) {@linkcode openFsSync}
 * returns null and the spool falls back to per-file fsync.
 *
 * Knows file descriptors and devices, nothing about records.
 *
 * @module
 */

import { GroupCommit } from "./group_commit.ts";

/** A shared, coalescing `syncfs` on one filesystem. */
export interface FsSync {
  /** Resolves once a `syncfs` that started after this call has finished. */
  sync(): Promise<void>;
  /** `syncfs` calls made on this filesystem so far (all users together). */
  readonly calls: number;
  /** Stop using it; the descriptor is closed when its last user releases it. */
  release(): void;
}

const O_RDONLY = 0;
const O_DIRECTORY = 0o200000; // Linux (x86-64 and aarch64)

const SYMBOLS = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  syncfs: { parameters: ["i32"], result: "i32", nonblocking: true },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>;

let libc: Libc | null | undefined;

/** libc through FFI, or null when it cannot be had here. */
function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  if (Deno.build.os !== "linux") return null;
  for (const name of ["libc.so.6", "libc.so"]) {
    try {
      libc = Deno.dlopen(name, SYMBOLS);
      break;
    } catch {
      // no FFI permission, or not this name: try the next / fall back
    }
  }
  return libc;
}

interface Shared {
  fd: number;
  refs: number;
  sync: ReturnType<typeof coalesce>;
}

const byDevice = new Map<number, Shared>();

/**
 * Coalesce calls of a sync function: each call resolves once a call of `fn`
 * that started after it has finished; calls made while one runs share the
 * next. `calls()` counts the calls of `fn`.
 *
 * @example
 * ```ts
 * const sync = coalesce(() => syncfsOnce());
 * await Promise.all([sync.sync(), sync.sync()]); // one or two syncfsOnce calls
 * ```
 */
export function coalesce(
  fn: () => Promise<void>,
): { sync(): Promise<void>; calls(): number; drain(): Promise<void> } {
  const gc = new GroupCommit<null>(fn, { maxBatch: Number.MAX_SAFE_INTEGER });
  return { sync: () => gc.submit(null), calls: () => gc.commits, drain: () => gc.drain() };
}

/**
 * A coalescing `syncfs` on the filesystem holding `dir`, or null when
 * `syncfs` is not available (the caller then fsyncs each file).
 *
 * @throws {Error} when `dir` cannot be opened although FFI works.
 * @example
 * ```ts
 * const fsSync = await openFsSync("/var/spool/kumo/data");
 * if (fsSync) await fsSync.sync(); // everything written before is durable
 * ```
 */
export async function openFsSync(dir: string): Promise<FsSync | null> {
  const lib = loadLibc();
  if (lib === null) return null;
  const dev = (await Deno.stat(dir)).dev;
  let shared = byDevice.get(dev);
  if (shared === undefined) {
    const fd = lib.symbols.open(new TextEncoder().encode(dir + "\0"), O_RDONLY | O_DIRECTORY);
    if (fd < 0) throw new Error(`Cannot open spool directory "${dir}" for syncfs: open failed`);
    const sync = coalesce(async () => {
      const r = await lib.symbols.syncfs(fd);
      if (r !== 0) throw new Error(`syncfs on the filesystem of "${dir}" failed`);
    });
    shared = { fd, refs: 0, sync };
    byDevice.set(dev, shared);
  }
  shared.refs++;
  const s = shared;
  let released = false;
  return {
    sync: () => s.sync.sync(),
    get calls() {
      return s.sync.calls();
    },
    release() {
      if (released) return;
      released = true;
      if (--s.refs > 0) return;
      byDevice.delete(dev);
      // Close once the syncs in flight are done with the descriptor.
      void s.sync.drain().then(() => lib.symbols.close(s.fd));
    },
  };
}
