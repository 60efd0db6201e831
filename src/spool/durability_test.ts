/**
 * Spool durability (both backends): a synced store resolves only after the
 * sync that makes it durable, and concurrent stores share syncs (group
 * commit) — N concurrent stores cost fewer than N syncs. The sync is
 * injected (LocalDisk's filesystem sync) or stubbed on the real handle
 * (`Deno.FsFile.prototype.syncData` for LogSpool, node's `FileHandle`
 * `datasync` for LocalDisk's per-file fallback), so a missing, early or
 * per-message sync fails these tests.
 */
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { newSpoolId } from "../message/spool_id.ts";
import { LocalDiskSpool } from "./local_disk_spool.ts";
import { LogSpool } from "./log_spool.ts";
import { SpoolError } from "./spool.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kumo-durable-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Resolves to "pending" if `p` has not settled within `ms`. */
function stateAfter(p: Promise<unknown>, ms: number): Promise<"resolved" | "rejected" | "pending"> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.then(() => "resolved" as const, () => "rejected" as const),
    new Promise<"pending">((r) => timer = setTimeout(() => r("pending"), ms)),
  ]).finally(() => clearTimeout(timer));
}

/** A sync that completes only when the test says so, one call at a time. */
function gatedSync() {
  const waiting: (() => void)[] = [];
  let calls = 0;
  return {
    fn: () => {
      calls++;
      return new Promise<void>((r) => waiting.push(r));
    },
    get calls() {
      return calls;
    },
    /** Let the oldest waiting call finish; false when none waits. */
    releaseOne(): boolean {
      const r = waiting.shift();
      r?.();
      return r !== undefined;
    },
    releaseAll() {
      for (const r of waiting.splice(0)) r();
    },
  };
}

function filesUnder(dir: string): Set<string> {
  const out = new Set<string>();
  const walk = (d: string) => {
    for (const e of Deno.readDirSync(d)) {
      if (e.isDirectory) walk(`${d}/${e.name}`);
      else out.add(`${d}/${e.name}`.slice(dir.length + 1));
    }
  };
  walk(dir);
  return out;
}

const recordPath = (id: string) =>
  `data/${id.slice(0, 2)}/${id.slice(2, 4)}/${id.slice(4, 6)}/${id.slice(6, 8)}/${id.slice(8)}`;

Deno.test("LocalDiskSpool: 50 concurrent synced stores share a few filesystem syncs, each after its file", () =>
  withDir(async (dir) => {
    // Each sync takes a snapshot of what is on disk when it starts: that is
    // what it makes durable.
    const snapshots: Set<string>[] = [];
    const spool = await LocalDiskSpool.open(dir, {
      syncFilesystem: async () => {
        snapshots.push(filesUnder(dir));
        await new Promise((r) => setTimeout(r, 3)); // a disk that takes its time
      },
    });
    assert.equal(spool.syncMode, "syncfs");
    const ids = Array.from({ length: 50 }, () => newSpoolId());
    await Promise.all(ids.map((id, i) => spool.store(id, enc(`m${i}`), { sync: true })));
    assert.ok(snapshots.length >= 2, `syncs: ${snapshots.length}`);
    assert.ok(snapshots.length < 10, `group commit: ${snapshots.length} syncs for 50 stores`);
    for (const id of ids) {
      const named = snapshots.findIndex((s) => s.has(recordPath(id)));
      assert.ok(named >= 0, `no sync started after ${id} got its name`);
      const temp = snapshots.findIndex((s) => [...s].some((f) => f.startsWith(`new/${id}.`)));
      assert.ok(temp >= 0 && temp < named, `the bytes of ${id} were not synced before its name`);
    }
    const before = snapshots.length;
    await spool.store(newSpoolId(), enc("unsynced"), { sync: false });
    assert.equal(snapshots.length, before, "a store without sync does not sync");
    await spool.close();
  }));

Deno.test("LocalDiskSpool: a synced store resolves only after both filesystem syncs", () =>
  withDir(async (dir) => {
    const gate = gatedSync();
    const spool = await LocalDiskSpool.open(dir, { syncFilesystem: gate.fn });
    const id = newSpoolId();
    const p = spool.store(id, enc("durable"), { sync: true });
    assert.equal(await stateAfter(p, 200), "pending", "waits for the first sync");
    assert.equal(gate.calls, 1);
    assert.equal(await spool.load(id), null, "not renamed into place before its bytes are synced");
    // Unsynced stores do not wait behind it.
    const quick = newSpoolId();
    assert.equal(await stateAfter(spool.store(quick, enc("q"), { sync: false }), 2000), "resolved");
    assert.ok(gate.releaseOne());
    assert.equal(await stateAfter(p, 200), "pending", "waits for the second sync (its name)");
    assert.equal(gate.calls, 2);
    assert.equal(dec(await spool.load(id)), "durable");
    assert.ok(gate.releaseOne());
    assert.equal(await stateAfter(p, 2000), "resolved");
    gate.releaseAll();
    await spool.close();
  }));

Deno.test("LocalDiskSpool: a failed filesystem sync rejects the store and leaves no record", () =>
  withDir(async (dir) => {
    const spool = await LocalDiskSpool.open(dir, {
      syncFilesystem: () => Promise.reject(new Error("EIO")),
    });
    const id = newSpoolId();
    await assert.rejects(spool.store(id, enc("lost"), { sync: true }), (e: unknown) => {
      assert.ok(e instanceof SpoolError);
      assert.match(e.message, /^Cannot sync spool ".*": EIO$/);
      return true;
    });
    assert.equal(await spool.load(id), null);
    assert.deepEqual(await fsp.readdir(`${dir}/new`), []);
    await spool.close();
  }));

Deno.test("LocalDiskSpool under -A uses syncfs, fewer calls than stores", () =>
  withDir(async (dir) => {
    const spool = await LocalDiskSpool.open(dir);
    assert.equal(spool.syncMode, "syncfs", "Deno FFI reaches libc's syncfs here");
    const before = spool.fsSyncCalls;
    const ids = Array.from({ length: 40 }, () => newSpoolId());
    await Promise.all(ids.map((id) => spool.store(id, enc(id), { sync: true })));
    const calls = spool.fsSyncCalls - before;
    assert.ok(calls >= 2 && calls < 40, `syncfs calls for 40 stores: ${calls}`);
    for (const id of ids) assert.equal(dec(await spool.load(id)), id);
    await spool.close();
  }));

Deno.test("LocalDiskSpool per-file fallback: every synced store waits for its file's fdatasync", () =>
  withDir(async (dir) => {
    const probe = await fsp.open(`${dir}/probe`, "w");
    const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
    await probe.close();
    const original = proto.datasync;
    const gate = gatedSync();
    proto.datasync = gate.fn;
    try {
      const spool = await LocalDiskSpool.open(`${dir}/spool`, { perFileSync: true });
      assert.equal(spool.syncMode, "fsync");
      const ids = [newSpoolId(), newSpoolId(), newSpoolId()];
      const all = Promise.all(ids.map((id) => spool.store(id, enc("x"), { sync: true })));
      assert.equal(await stateAfter(all, 200), "pending");
      assert.ok(gate.calls >= 1);
      for (const id of ids) assert.equal(await spool.load(id), null, "not published before sync");
      let state = "pending";
      for (let i = 0; i < 10 && state === "pending"; i++) {
        gate.releaseAll();
        state = await stateAfter(all, 200);
      }
      assert.equal(state, "resolved");
      assert.equal(gate.calls, 3, "one fdatasync per file in this mode");
      for (const id of ids) assert.equal(dec(await spool.load(id)), "x");
      await spool.close();
    } finally {
      proto.datasync = original;
    }
  }));

Deno.test("LogSpool: 50 concurrent synced stores share fewer than 50 fdatasyncs", () =>
  withDir(async (dir) => {
    const original = Deno.FsFile.prototype.syncData;
    let calls = 0;
    Deno.FsFile.prototype.syncData = async function (this: Deno.FsFile) {
      calls++;
      await new Promise((r) => setTimeout(r, 3));
      return await original.call(this);
    };
    try {
      const spool = await LogSpool.open(dir);
      const ids = Array.from({ length: 50 }, () => newSpoolId());
      await Promise.all(ids.map((id, i) => spool.store(id, enc(`m${i}`), { sync: true })));
      assert.ok(calls >= 1 && calls < 10, `fdatasyncs for 50 stores: ${calls}`);
      const before = calls;
      await spool.store(newSpoolId(), enc("unsynced"), { sync: false });
      assert.equal(calls, before, "a store without sync does not fdatasync");
      await spool.close();
    } finally {
      Deno.FsFile.prototype.syncData = original;
    }
  }));

Deno.test("LogSpool: a synced store resolves only after its batch's fdatasync", () =>
  withDir(async (dir) => {
    const original = Deno.FsFile.prototype.syncData;
    const gate = gatedSync();
    Deno.FsFile.prototype.syncData = gate.fn;
    try {
      const spool = await LogSpool.open(dir);
      const id = newSpoolId();
      const p = spool.store(id, enc("durable"), { sync: true });
      assert.equal(await stateAfter(p, 200), "pending");
      assert.equal(gate.calls, 1);
      gate.releaseOne();
      assert.equal(await stateAfter(p, 2000), "resolved");
      assert.equal(dec(await spool.load(id)), "durable");

      // A failing fdatasync rejects the batch; the record is not kept.
      Deno.FsFile.prototype.syncData = () => Promise.reject(new Error("EIO"));
      const lost = newSpoolId();
      await assert.rejects(
        spool.store(lost, enc("lost"), { sync: true }),
        /Cannot append to spool ".*": EIO/,
      );
      assert.equal(await spool.load(lost), null);
      Deno.FsFile.prototype.syncData = original;
      await spool.close();
    } finally {
      Deno.FsFile.prototype.syncData = original;
    }
  }));
