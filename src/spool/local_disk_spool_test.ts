import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { newSpoolId } from "../message/spool_id.ts";
import { LocalDiskSpool } from "./local_disk_spool.ts";
import { InvalidSpoolIdError, SpoolClosedError, SpoolLockedError } from "./spool.ts";

const enc = (s: string) => new TextEncoder().encode(s);

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kumo-spool-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function collect(spool: LocalDiskSpool): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const { id, bytes } of spool.enumerate()) out.set(id, new TextDecoder().decode(bytes));
  return out;
}

Deno.test("LocalDiskSpool stores, loads, replaces and removes records", () =>
  withDir(async (dir) => {
    const spool = await LocalDiskSpool.open(dir);
    const id = newSpoolId();
    assert.equal(await spool.load(id), null);
    await spool.store(id, enc("one"), { sync: false });
    assert.deepEqual(await spool.load(id), enc("one"));
    // layout: data/aa/bb/cc/dd/rest
    const file = `${dir}/data/${id.slice(0, 2)}/${id.slice(2, 4)}/${id.slice(4, 6)}/${
      id.slice(6, 8)
    }/${id.slice(8)}`;
    assert.equal(await Deno.readTextFile(file), "one");
    await spool.store(id, enc("two"), { sync: true });
    assert.deepEqual(await spool.load(id), enc("two"));
    await spool.remove(id);
    assert.equal(await spool.load(id), null);
    await spool.remove(id); // missing: not an error
    // empty directories were pruned
    assert.deepEqual(await fsp.readdir(`${dir}/data`), []);
    await assert.rejects(spool.store("../../etc", enc("x"), { sync: false }), InvalidSpoolIdError);
    await spool.close();
    await assert.rejects(spool.load(id), SpoolClosedError);
    await assert.rejects(fsp.stat(`${dir}/lock`), "lock released on close");
  }));

Deno.test("LocalDiskSpool enumerates every record", () =>
  withDir(async (dir) => {
    const spool = await LocalDiskSpool.open(dir);
    const ids = Array.from({ length: 50 }, () => newSpoolId());
    await Promise.all(ids.map((id, i) => spool.store(id, enc(`m${i}`), { sync: i % 2 === 0 })));
    await spool.remove(ids[0]);
    const got = await collect(spool);
    assert.equal(got.size, 49);
    for (let i = 1; i < 50; i++) assert.equal(got.get(ids[i]), `m${i}`);
    await spool.close();
  }));

Deno.test("LocalDiskSpool lock: a second open fails, a stale lock is taken over", () =>
  withDir(async (dir) => {
    const spool = await LocalDiskSpool.open(dir);
    assert.equal((await Deno.readTextFile(`${dir}/lock`)).trim(), String(Deno.pid));
    await assert.rejects(LocalDiskSpool.open(dir), (e: unknown) => {
      assert.ok(e instanceof SpoolLockedError);
      assert.equal(e.pid, Deno.pid);
      assert.match(e.message, /locked by live process/);
      return true;
    });
    await spool.close();

    // A PID that cannot be alive (above Linux pid_max) is stale.
    await Deno.writeTextFile(`${dir}/lock`, "99999999\n");
    const again = await LocalDiskSpool.open(dir);
    assert.equal((await Deno.readTextFile(`${dir}/lock`)).trim(), String(Deno.pid));
    await again.close();
  }));

Deno.test("LocalDiskSpool ignores and clears temp files left in new/ by a crash", () =>
  withDir(async (dir) => {
    const spool = await LocalDiskSpool.open(dir);
    const id = newSpoolId();
    await spool.store(id, enc("kept"), { sync: true });
    await spool.close();
    // Simulate a crash mid-store: a temp file for another id, never renamed.
    const orphan = newSpoolId();
    await Deno.writeTextFile(`${dir}/new/${orphan}.7`, "half-written");
    await Deno.writeTextFile(`${dir}/lock`, "99999999\n");
    const reopened = await LocalDiskSpool.open(dir);
    assert.deepEqual(await fsp.readdir(`${dir}/new`), []);
    const got = await collect(reopened);
    assert.deepEqual([...got.keys()], [id]);
    assert.equal(await reopened.load(orphan), null);
    await reopened.close();
  }));

Deno.test("LocalDiskSpool enumerate skips stray files in the data tree", () =>
  withDir(async (dir) => {
    const spool = await LocalDiskSpool.open(dir);
    const id = newSpoolId();
    await spool.store(id, enc("x"), { sync: false });
    await Deno.writeTextFile(`${dir}/data/README`, "not a record");
    await Deno.writeTextFile(`${dir}/data/${id.slice(0, 2)}/zz`, "not a record");
    assert.deepEqual([...(await collect(spool)).keys()], [id]);
    await spool.close();
  }));

Deno.test("LocalDiskSpool group commit: 500 concurrent synced stores all land", () =>
  withDir(async (dir) => {
    const spool = await LocalDiskSpool.open(dir, { flush: true });
    const ids = Array.from({ length: 500 }, () => newSpoolId());
    const body = enc("x".repeat(1000));
    await Promise.all(ids.map((id) => spool.store(id, body, { sync: true })));
    await spool.close();

    const reopened = await LocalDiskSpool.open(dir);
    const got = await collect(reopened);
    assert.equal(got.size, 500);
    for (const id of ids) assert.equal(got.get(id)?.length, 1000);
    await reopened.close();
  }));

Deno.test("LocalDiskSpool applies operations on one id in request order", () =>
  withDir(async (dir) => {
    const spool = await LocalDiskSpool.open(dir);
    const id = newSpoolId();
    // A synced store superseded by a later store or remove must not win.
    const a = spool.store(id, enc("old"), { sync: true });
    const b = spool.store(id, enc("new"), { sync: false });
    await Promise.all([a, b]);
    assert.deepEqual(await spool.load(id), enc("new"));
    const c = spool.store(id, enc("again"), { sync: true });
    const d = spool.remove(id);
    await Promise.all([c, d]);
    assert.equal(await spool.load(id), null);
    assert.deepEqual(await fsp.readdir(`${dir}/new`), []);
    await spool.close();
  }));
