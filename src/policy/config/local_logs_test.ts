/**
 * Unit tests for parseLocalLogs() (`kumo.configure_local_logs`). Place on
 * the path: policy configuration, read by the local loggers.
 */
import assert from "node:assert/strict";
import { localLogsToJSON, parseLocalLogs } from "./local_logs.ts";

Deno.test("parseLocalLogs() defaults", () => {
  const l = parseLocalLogs({ log_dir: "/var/log/kumo" });
  assert.equal(l.maxFileSize, 1_000_000_000);
  assert.equal(l.maxSegmentDuration, undefined);
  assert.equal(l.compressionLevel, 0);
  assert.equal(l.backPressure, 128000);
  assert.deepEqual(l.headers, []);
  assert.deepEqual(l.meta, []);
  assert.deepEqual(l.perRecord, {});
  assert.deepEqual(l.minFreeSpace, { percent: 10 });
  assert.equal(localLogsToJSON(l).min_free_inodes, "10%");
});

Deno.test("parseLocalLogs() per_record keyed by record type or Any", () => {
  const l = parseLocalLogs({
    log_dir: "/l",
    max_segment_duration: "1m",
    headers: ["Subject", "X-*"],
    meta: ["*"],
    per_record: {
      Reception: { suffix: "_recv" },
      Any: { enable: false },
      Delivery: { template: "{{ id }}", segment_header: "h\n" },
    },
  });
  assert.equal(l.maxSegmentDuration, 60_000);
  assert.deepEqual(l.perRecord.Reception, {
    enable: true,
    suffix: "_recv",
    logDir: undefined,
    template: undefined,
    segmentHeader: "",
  });
  assert.equal(l.perRecord.Any!.enable, false);
  assert.deepEqual(localLogsToJSON(l).per_record, {
    Reception: { enable: true, suffix: "_recv", segment_header: "" },
    Any: { enable: false, segment_header: "" },
    Delivery: { enable: true, template: "{{ id }}", segment_header: "h\n" },
  });
  assert.equal(localLogsToJSON(l).max_segment_duration, "1m");
});

Deno.test("parseLocalLogs() rejects bad record types and unknown keys", () => {
  assert.throws(
    () => parseLocalLogs({ log_dir: "/l", per_record: { reception: {} } }),
    /unknown variant `reception`, expected one of `Reception`, `Delivery`/,
  );
  assert.throws(
    () => parseLocalLogs({ log_dir: "/l", per_record: { Bounce: { enabled: true } } }),
    /unknown field `enabled`/,
  );
  assert.throws(
    () => parseLocalLogs({ log_dir: "/l", logdir: "/x" }),
    /unknown field `logdir`, expected one of `log_dir`, /,
  );
  assert.throws(() => parseLocalLogs({}), /missing field `log_dir`/);
  assert.deepEqual(parseLocalLogs({ log_dir: "/l", per_record: [] }).perRecord, {});
});
