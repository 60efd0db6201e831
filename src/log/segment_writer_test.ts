import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import zlib from "node:zlib";
import {
  markExistingReadOnly,
  segmentFileName,
  SegmentWriter,
  utf8Length,
} from "./segment_writer.ts";

function tempDir(): string {
  return Deno.makeTempDirSync({ prefix: "kumo_seg_" });
}

function decode(path: string): string {
  return zlib.zstdDecompressSync(readFileSync(path)).toString("utf8");
}

/** Decode a zstd stream that has not been ended yet (an open segment). */
function decodePartial(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const d = zlib.createZstdDecompress();
    const out: Uint8Array[] = [];
    d.on("data", (c: Uint8Array) => out.push(c));
    d.on("error", reject);
    d.write(readFileSync(path), () => {
      // Give the decoder a tick to emit what it has.
      setTimeout(() => {
        d.destroy();
        resolve(Buffer.concat(out).toString("utf8"));
      }, 10);
    });
  });
}

function isReadOnly(path: string): boolean {
  return (statSync(path).mode & 0o222) === 0;
}

function files(dir: string): string[] {
  return readdirSync(dir).sort();
}

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);

Deno.test("segmentFileName() follows chrono %.f", () => {
  assert.equal(segmentFileName(T0), "20260102-030405");
  assert.equal(segmentFileName(T0 + 500, "_recv"), "20260102-030405.500_recv");
  assert.equal(segmentFileName(T0 + 123), "20260102-030405.123");
  assert.equal(segmentFileName(T0 + 123.25), "20260102-030405.123250");
  assert.equal(segmentFileName(T0 + 1.5), "20260102-030405.001500");
  assert.equal(segmentFileName(T0 + 0.0625), "20260102-030405.000062500");
});

Deno.test("utf8Length() counts UTF-8 bytes", () => {
  for (const s of ["", "abc\n", "é", "€", "😀", "a😀é€\n"]) {
    assert.equal(utf8Length(s), new TextEncoder().encode(s).length, s);
  }
});

Deno.test("SegmentWriter writes one zstd segment, header first, read-only after close", async () => {
  const dir = join(tempDir(), "logs"); // created by the writer
  const w = new SegmentWriter({
    dir,
    suffix: "_recv",
    segmentHeader: "type,id\n",
    now: () => T0 + 250,
  });
  const lines = ['{"type":"Reception","n":1}\n', '{"type":"Reception","n":2,"u":"é"}\n'];
  for (const l of lines) w.write(l);
  assert.equal(w.currentPath, join(dir, "20260102-030405.250_recv"));
  await w.close();
  assert.deepEqual(files(dir), ["20260102-030405.250_recv"]);
  const path = join(dir, "20260102-030405.250_recv");
  assert.equal(decode(path), "type,id\n" + lines.join(""));
  assert.ok(isReadOnly(path));
  assert.equal(w.currentPath, null);
});

Deno.test("SegmentWriter.flush() puts data on disk while the segment stays open", async () => {
  const dir = tempDir();
  const w = new SegmentWriter({ dir, compressionLevel: 19 });
  w.write("one\n");
  w.write("two\n");
  await w.flush();
  const path = w.currentPath!;
  assert.ok(!isReadOnly(path));
  assert.equal(await decodePartial(path), "one\ntwo\n");
  w.write("three\n");
  await w.close();
  assert.equal(decode(path), "one\ntwo\nthree\n");
  assert.ok(isReadOnly(path));
});

Deno.test("SegmentWriter rotates when uncompressed bytes reach max_file_size", async () => {
  const dir = tempDir();
  let t = T0;
  const w = new SegmentWriter({ dir, maxFileSize: 100, now: () => (t += 1) });
  const lines: string[] = [];
  for (let i = 0; i < 7; i++) lines.push(`{"n":${i},"pad":"${"x".repeat(23)}"}\n`); // 40 bytes
  assert.equal(lines[0].length, 40);
  for (const l of lines) w.write(l);
  await w.close();
  const names = files(dir);
  assert.equal(names.length, 3);
  assert.deepEqual(names.map((n) => decode(join(dir, n))), [
    lines.slice(0, 3).join(""),
    lines.slice(3, 6).join(""),
    lines[6],
  ]);
  for (const n of names) assert.ok(isReadOnly(join(dir, n)), n);
  assert.deepEqual(w.finishedPaths.map((p) => p.slice(dir.length + 1)).sort(), names);
});

Deno.test("SegmentWriter rotates on write once max_segment_duration has passed", async () => {
  const dir = tempDir();
  let t = T0;
  const w = new SegmentWriter({ dir, maxSegmentDurationMs: 60_000, now: () => t });
  w.write("a\n");
  t += 59_999;
  w.write("b\n");
  t += 1;
  w.write("c\n");
  await w.close();
  assert.deepEqual(files(dir), ["20260102-030405", "20260102-030505"]);
  assert.equal(decode(join(dir, "20260102-030405")), "a\nb\n");
  assert.equal(decode(join(dir, "20260102-030505")), "c\n");
});

Deno.test("SegmentWriter closes an idle segment on its duration timer", async () => {
  const dir = tempDir();
  const w = new SegmentWriter({ dir, maxSegmentDurationMs: 40 });
  w.write("idle\n");
  const path = w.currentPath!;
  for (let i = 0; i < 50 && w.finishedPaths.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.deepEqual(w.finishedPaths, [path]);
  assert.equal(w.currentPath, null);
  assert.ok(isReadOnly(path));
  assert.equal(decode(path), "idle\n");
  await w.close();
});

Deno.test("SegmentWriter hands large batches to the compressor without waiting", async () => {
  const dir = tempDir();
  const w = new SegmentWriter({ dir });
  const line = "y".repeat(1023) + "\n";
  for (let i = 0; i < 200; i++) w.write(line);
  await w.close();
  const [name] = files(dir);
  assert.equal(decode(join(dir, name)), line.repeat(200));
});

Deno.test("markExistingReadOnly() finishes leftovers but not dotfiles or dirs", () => {
  const dir = tempDir();
  writeFileSync(join(dir, "20250101-000000"), "x", { mode: 0o644 });
  writeFileSync(join(dir, ".tmp"), "x", { mode: 0o644 });
  mkdirSync(join(dir, "sub"), { mode: 0o755 });
  markExistingReadOnly(dir);
  assert.ok(isReadOnly(join(dir, "20250101-000000")));
  assert.ok(!isReadOnly(join(dir, ".tmp")));
  assert.ok(!isReadOnly(join(dir, "sub")));
  markExistingReadOnly(join(dir, "missing")); // no throw
});
