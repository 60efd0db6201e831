import assert from "node:assert/strict";
import { diskSpaceCheck, isBelowFloor } from "./disk_space.ts";

const fsc = { bsize: 4096, blocks: 1000, bavail: 50, files: 100, ffree: 50 };

Deno.test("isBelowFloor() compares percent and absolute floors", () => {
  assert.equal(isBelowFloor(fsc, { percent: 10 }, { percent: 10 }), true); // 5 % space
  assert.equal(isBelowFloor(fsc, { percent: 5 }, { percent: 10 }), false);
  assert.equal(isBelowFloor(fsc, { absolute: 50 * 4096 }, { percent: 0 }), false);
  assert.equal(isBelowFloor(fsc, { absolute: 50 * 4096 + 1 }, { percent: 0 }), true);
  assert.equal(isBelowFloor(fsc, { percent: 0 }, { absolute: 51 }), true); // inodes
  assert.equal(
    isBelowFloor({ ...fsc, files: 0, ffree: 0 }, { percent: 0 }, { percent: 90 }),
    false,
  );
});

Deno.test("diskSpaceCheck() reads the real filesystem and caches the answer", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const full = diskSpaceCheck([{
      path: dir,
      minFreeSpace: { percent: 100 },
      minFreeInodes: { percent: 0 },
    }]);
    assert.equal(full(), true, "nothing has 100 % free");
    const ok = diskSpaceCheck([{
      path: dir,
      minFreeSpace: { percent: 0 },
      minFreeInodes: { percent: 0 },
    }]);
    assert.equal(ok(), false);
    const missing = diskSpaceCheck([{
      path: `${dir}/nope`,
      minFreeSpace: { percent: 100 },
      minFreeInodes: { percent: 0 },
    }]);
    assert.equal(missing(), false);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
