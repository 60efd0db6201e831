import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { newSpoolId } from "../message/spool_id.ts";
import { LogSpool } from "./log_spool.ts";
import { InvalidSpoolIdError, SpoolClosedError, SpoolLockedError } from "./spool.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kumo-logspool-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function collect(spool: LogSpool): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const { id, bytes } of spool.enumerate()) out.set(id, dec(bytes)!);
  return out;
}

Deno.test("LogSpool stores, loads, replaces and removes records", () =>
  withDir(async (dir) => {
    const spool = await LogSpool.open(dir);
    const id = newSpoolId();
    assert.equal(await spool.load(id), null);
    const p = spool.store(id, enc("one"), { sync: false });
    assert.equal(dec(await spool.load(id)), "one", "visible before the append completes");
    await p;
    assert.equal(dec(await spool.load(id)), "one");
    await spool.store(id, enc("two"), { sync: true });
    assert.equal(dec(await spool.load(id)), "two");
    await spool.remove(id);
    assert.equal(await spool.load(id), null);
    await spool.remove(id); // missing: not an error
    await assert.rejects(spool.store("../../etc", enc("x"), { sync: false }), InvalidSpoolIdError);
    await assert.rejects(LogSpool.open(dir), SpoolLockedError);
    await spool.close();
    await assert.rejects(spool.load(id), SpoolClosedError);
    await assert.rejects(fsp.stat(`${dir}/lock`), "lock released on close");
  }));

Deno.test("LogSpool replays after reopen and shares one commit among concurrent stores", () =>
  withDir(async (dir) => {
    let spool = await LogSpool.open(dir);
    const ids = Array.from({ length: 200 }, () => newSpoolId());
    await Promise.all(ids.map((id, i) => spool.store(id, enc(`m${i}`), { sync: true })));
    await spool.store(ids[1], enc("replaced"), { sync: true });
    await spool.remove(ids[0]);
    await spool.close();
    spool = await LogSpool.open(dir);
    const got = await collect(spool);
    assert.equal(got.size, 199);
    assert.equal(got.get(ids[1]), "replaced");
    for (let i = 2; i < 200; i++) assert.equal(got.get(ids[i]), `m${i}`);
    await spool.close();
    // 200 concurrent sync stores went out in a handful of appends, not 200.
    const segs = (await fsp.readdir(`${dir}/log`)).filter((n) => n.endsWith(".seg"));
    assert.ok(segs.length >= 1 && segs.length <= 3, `segments: ${segs}`);
  }));

Deno.test("LogSpool cuts a torn record at the end of a segment", () =>
  withDir(async (dir) => {
    let spool = await LogSpool.open(dir);
    const a = newSpoolId();
    const b = newSpoolId();
    await spool.store(a, enc("kept"), { sync: true });
    await spool.store(b, enc("torn-away"), { sync: true });
    await spool.close();
    const segs = (await fsp.readdir(`${dir}/log`)).filter((n) => n.endsWith(".seg")).sort();
    const last = `${dir}/log/${segs[segs.length - 1]}`;
    // Records: a at 0 (16 + 32 + 4 bytes), then b (16 + 32 + 9): corrupt b's last byte.
    const fh = await fsp.open(last, "r+");
    await fh.write(new Uint8Array([0]), 0, 1, 52 + 57 - 1);
    await fh.close();
    spool = await LogSpool.open(dir);
    const got = await collect(spool);
    assert.deepEqual([...got], [[a, "kept"]]);
    const c = newSpoolId();
    await spool.store(c, enc("after"), { sync: true });
    await spool.close();
    spool = await LogSpool.open(dir);
    assert.equal((await collect(spool)).size, 2);
    await spool.close();
  }));

Deno.test("LogSpool deletes dead segments and compacts a mostly-dead oldest one", () =>
  withDir(async (dir) => {
    const spool = await LogSpool.open(dir, { segmentBytes: 4096 });
    const big = new Uint8Array(1000).fill(120);
    const keep = newSpoolId();
    await spool.store(keep, big, { sync: true });
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const id = newSpoolId();
      ids.push(id);
      await spool.store(id, big, { sync: true });
    }
    for (const id of ids) await spool.remove(id);
    for (let i = 0; i < 10; i++) await spool.store(newSpoolId(), big, { sync: true });
    await new Promise((r) => setTimeout(r, 100));
    const segs = (await fsp.readdir(`${dir}/log`)).filter((n) => n.endsWith(".seg"));
    assert.ok(segs.length <= 5, `old segments were not reclaimed: ${segs.length}`);
    assert.equal((await spool.load(keep))?.byteLength, 1000, "live record survived compaction");
    await spool.close();
    const again = await LogSpool.open(dir, { segmentBytes: 4096 });
    assert.equal((await collect(again)).size, 11);
    await again.close();
  }));
