import assert from "node:assert/strict";
import { ConfigError } from "../util/config_error.ts";
import { newSpoolId } from "../message/spool_id.ts";
import { LocalDiskSpool, LogSpool, openSpool } from "./mod.ts";

Deno.test("openSpool() opens LocalDisk as LocalDiskSpool and RocksDB as LogSpool", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-spool-" });
  try {
    for (const kind of ["LocalDisk", "RocksDB"] as const) {
      const spool = await openSpool({ name: "data", path: `${dir}/${kind}`, kind, flush: true });
      assert.ok(spool instanceof (kind === "LocalDisk" ? LocalDiskSpool : LogSpool));
      const id = newSpoolId();
      await spool.store(id, new Uint8Array([1, 2, 3]), { sync: false });
      assert.deepEqual(await spool.load(id), new Uint8Array([1, 2, 3]));
      await spool.close();
    }
    await assert.rejects(
      // deno-lint-ignore no-explicit-any
      openSpool({ name: "data", path: dir, kind: "Sled" as any }),
      ConfigError,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("KUMO_LOCALDISK_SYNC picks LocalDisk's sync: syncfs by default, fsync on request", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-spool-" });
  const before = Deno.env.get("KUMO_LOCALDISK_SYNC");
  try {
    Deno.env.delete("KUMO_LOCALDISK_SYNC");
    let spool = await openSpool({ name: "data", path: `${dir}/a`, kind: "LocalDisk" });
    assert.equal((spool as LocalDiskSpool).syncMode, "syncfs");
    await spool.close();
    Deno.env.set("KUMO_LOCALDISK_SYNC", "fsync");
    spool = await openSpool({ name: "data", path: `${dir}/b`, kind: "LocalDisk" });
    assert.equal((spool as LocalDiskSpool).syncMode, "fsync");
    await spool.close();
    Deno.env.set("KUMO_LOCALDISK_SYNC", "never");
    await assert.rejects(
      openSpool({ name: "data", path: `${dir}/c`, kind: "LocalDisk" }),
      /^ConfigError: invalid KUMO_LOCALDISK_SYNC "never": expected syncfs or fsync$/,
    );
  } finally {
    if (before === undefined) Deno.env.delete("KUMO_LOCALDISK_SYNC");
    else Deno.env.set("KUMO_LOCALDISK_SYNC", before);
    await Deno.remove(dir, { recursive: true });
  }
});
