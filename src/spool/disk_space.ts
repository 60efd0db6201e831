/**
 * Disk-space floor of the spools (`min_free_space` / `min_free_inodes` of
 * `kumo.define_spool`, queues-and-delivery.md §9.2): is any spool's
 * filesystem below its floor?
 *
 * On the mail's path the SMTP listener asks before each banner; a spool that
 * is too full gets `421 4.3.2 <host> disk is too full. Try later`. One
 * statfs per spool, re-read at most once a second (a connection storm costs
 * no syscalls). Never writes anything.
 *
 * @module
 */

import fs from "node:fs";
import type { MinFree } from "../policy/config/spool.ts";

/** The floor of one spool directory. */
export interface DiskFloor {
  path: string;
  minFreeSpace: MinFree;
  minFreeInodes: MinFree;
}

/** Filesystem counters as `statfs` reports them. */
export interface FsCounters {
  bsize: number;
  blocks: number;
  bavail: number;
  files: number;
  ffree: number;
}

function below(free: number, total: number, unit: number, floor: MinFree): boolean {
  if ("percent" in floor) return total > 0 && (free * 100) / total < floor.percent;
  return free * unit < floor.absolute;
}

/**
 * True when `c` is below either floor (space in bytes or percent of the
 * filesystem; inodes in count or percent; a filesystem without inode
 * accounting never fails the inode floor).
 *
 * @example
 * ```ts
 * isBelowFloor({ bsize: 4096, blocks: 100, bavail: 5, files: 0, ffree: 0 },
 *   { percent: 10 }, { percent: 10 }); // true: 5 % free
 * ```
 */
export function isBelowFloor(c: FsCounters, space: MinFree, inodes: MinFree): boolean {
  if (below(c.bavail, c.blocks, c.bsize, space)) return true;
  return c.files > 0 && below(c.ffree, c.files, 1, inodes);
}

/**
 * A cached check over several spools: returns a function answering "is a
 * spool too full?" (a spool whose directory cannot be stat'ed counts as not
 * full: the spool itself reports its errors).
 *
 * @example
 * ```ts
 * const tooFull = diskSpaceCheck([{ path: "/var/spool/kumo/data", minFreeSpace: { percent: 10 }, minFreeInodes: { percent: 10 } }]);
 * if (tooFull()) refuse();
 * ```
 */
export function diskSpaceCheck(floors: readonly DiskFloor[], maxAgeMs = 1000): () => boolean {
  let checkedAt = -Infinity;
  let full = false;
  return () => {
    const now = performance.now();
    if (now - checkedAt < maxAgeMs) return full;
    checkedAt = now;
    full = false;
    for (const f of floors) {
      let c: FsCounters;
      try {
        c = fs.statfsSync(f.path);
      } catch {
        continue;
      }
      if (isBelowFloor(c, f.minFreeSpace, f.minFreeInodes)) full = true;
    }
    return full;
  };
}
