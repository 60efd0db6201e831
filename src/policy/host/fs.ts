/**
 * `kumo.fs.*` and the legacy `kumo.glob`, `kumo.read_dir`,
 * `kumo.uncached_glob`: file-system helpers for policy.
 *
 * - `glob(pattern [, path])`: matching files (not directories), sorted; a
 *   relative pattern is taken relative to `path` (default the current
 *   directory) and results keep that prefix. kumo-edge never caches, so
 *   `glob` and `uncached_glob` are the same.
 * - `read_dir(path)`: the entries' paths (`path/name`), sorted.
 * - `open(path [, mode])`: a File object (`'r'` default, `'w'`, `'a'`,
 *   `'r+'`, `'w+'`, `'a+'`) with `:read()` (the rest of the file as text),
 *   `:write(text)`, `:flush()`, `:close()`.
 * - `metadata_for_path(path)`: `{ is_file, is_dir, is_symlink, len,
 *   readonly, modified, accessed, created }` (times as unix seconds, float).
 *
 * Place on the path: policy helpers; synchronous file I/O on the caller's
 * behalf (policy start-up and rare lookups, never per-message hot paths).
 *
 * @module
 */

import { evalGlobs } from "../config_monitor.ts";
import { bytesArg, luaBytes, registerLuaClass, textArg } from "./host_object.ts";

/** An open file. */
export class LuaFile {
  #file: Deno.FsFile | null;
  constructor(readonly path: string, file: Deno.FsFile) {
    this.#file = file;
  }
  /** The open handle; throws after close. */
  get handle(): Deno.FsFile {
    if (!this.#file) throw new Error(`Cannot use file "${this.path}": it is closed`);
    return this.#file;
  }
  /** Close once. */
  close(): void {
    this.#file?.close();
    this.#file = null;
  }
}

function readRest(f: Deno.FsFile): Uint8Array {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(65536);
  for (;;) {
    const n = f.readSync(buf);
    if (n === null || n === 0) break;
    chunks.push(buf.slice(0, n));
    total += n;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) (out.set(c, off), off += c.length);
  return out;
}

registerLuaClass(LuaFile, {
  name: "File",
  fields: (f, k) => (k === "path" ? f.path : undefined),
  methods: {
    read: (f) => luaBytes(readRest(f.handle)),
    write: (f, data: unknown) => {
      const b = bytesArg(data, "data");
      let off = 0;
      while (off < b.length) off += f.handle.writeSync(b.subarray(off));
    },
    flush: (f) => f.handle.syncSync(),
    close: (f) => f.close(),
  },
  meta: { __close: (f) => f.close(), __tostring: (f) => `File(${f.path})` },
});

const MODES: Record<string, Deno.OpenOptions> = {
  r: { read: true },
  "r+": { read: true, write: true },
  w: { write: true, create: true, truncate: true },
  "w+": { read: true, write: true, create: true, truncate: true },
  a: { append: true, create: true },
  "a+": { read: true, append: true, create: true },
};

function openFile(path: unknown, mode: unknown = "r"): LuaFile {
  const p = textArg(path, "path");
  const m = String(mode ?? "r").replace("b", "");
  const opts = MODES[m];
  if (!opts) throw new TypeError(`Cannot open "${p}": unknown mode "${mode}"`);
  try {
    return new LuaFile(p, Deno.openSync(p, opts));
  } catch (e) {
    throw new Error(`Cannot open "${p}": ${(e as Error).message}`);
  }
}

function glob(pattern: unknown, path?: unknown): string[] {
  const pat = textArg(pattern, "pattern");
  if (pat.startsWith("/")) return evalGlobs([pat]);
  const base = path === undefined || path === null ? "." : textArg(path, "path");
  const absBase = base.startsWith("/") ? base : `${Deno.cwd()}/${base}`;
  const prefix = absBase.replace(/\/+$/, "") + "/";
  return evalGlobs([prefix + pat]).map((f) =>
    base.replace(/\/+$/, "") + "/" + f.slice(prefix.length)
  );
}

function readDir(path: unknown): string[] {
  const p = textArg(path, "path");
  const out: string[] = [];
  try {
    for (const e of Deno.readDirSync(p)) out.push(`${p.replace(/\/+$/, "")}/${e.name}`);
  } catch (e) {
    throw new Error(`Cannot read directory "${p}": ${(e as Error).message}`);
  }
  return out.sort();
}

function metadata(path: unknown): Record<string, unknown> {
  const p = textArg(path, "path");
  let st: Deno.FileInfo;
  try {
    st = Deno.lstatSync(p);
  } catch (e) {
    throw new Error(`Cannot read metadata of "${p}": ${(e as Error).message}`);
  }
  const t = (d: Date | null) => (d ? d.getTime() / 1000 : undefined);
  return {
    is_file: st.isFile,
    is_dir: st.isDirectory,
    is_symlink: st.isSymlink,
    len: st.size,
    readonly: st.mode !== null ? (st.mode & 0o222) === 0 : false,
    modified: t(st.mtime),
    accessed: t(st.atime),
    created: t(st.birthtime),
  };
}

type Fn = (...args: never[]) => unknown;

/** The file-system functions. */
export const FS_FUNCTIONS: Record<string, Fn> = {
  "fs.glob": glob as Fn,
  "fs.read_dir": readDir as Fn,
  "fs.open": openFile as Fn,
  "fs.metadata_for_path": metadata as Fn,
  glob: glob as Fn,
  uncached_glob: glob as Fn,
  read_dir: readDir as Fn,
};
