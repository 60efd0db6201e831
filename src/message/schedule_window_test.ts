/**
 * Unit tests for per-message schedules (src/message/schedule_window.ts):
 * first_attempt, weekly windows in a time zone (DST included), validation.
 */
import assert from "node:assert/strict";
import { nextInWindow, parseWindow, scheduledDue } from "./schedule_window.ts";
import { parseScheduling } from "./message.ts";

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

Deno.test("scheduledDue() never goes before first_attempt, and keeps a later due", () => {
  const first = "2026-12-05T10:00:00Z";
  assert.equal(
    iso(scheduledDue(at("2026-12-02T00:00:00Z"), { first_attempt: first })),
    "2026-12-05T10:00:00.000Z",
  );
  assert.equal(
    iso(scheduledDue(at("2026-12-06T00:00:00Z"), { first_attempt: first })),
    "2026-12-06T00:00:00.000Z",
  );
  assert.equal(scheduledDue(123, {}), 123);
});

Deno.test("nextInWindow() keeps a time inside the window and moves others to the next opening", () => {
  const w = parseWindow({ dow: "Mon,Wed", tz: "UTC", start: "09:00:00", end: "17:00:00" })!;
  // 2026-12-07 is a Monday.
  assert.equal(iso(nextInWindow(at("2026-12-07T12:00:00Z"), w)), "2026-12-07T12:00:00.000Z");
  assert.equal(iso(nextInWindow(at("2026-12-07T08:00:00Z"), w)), "2026-12-07T09:00:00.000Z");
  assert.equal(iso(nextInWindow(at("2026-12-07T17:30:00Z"), w)), "2026-12-09T09:00:00.000Z");
  assert.equal(iso(nextInWindow(at("2026-12-10T01:00:00Z"), w)), "2026-12-14T09:00:00.000Z");
});

Deno.test("nextInWindow() reads start and end in the window's time zone, across DST", () => {
  const w = parseWindow({ dow: "Sun,Mon", tz: "America/New_York", start: "09:00", end: "10:00" })!;
  // Winter (EST, UTC-5): Monday 2026-12-07 09:00 local = 14:00Z.
  assert.equal(iso(nextInWindow(at("2026-12-07T12:00:00Z"), w)), "2026-12-07T14:00:00.000Z");
  // Summer (EDT, UTC-4): Monday 2026-07-06 09:00 local = 13:00Z.
  assert.equal(iso(nextInWindow(at("2026-07-06T05:00:00Z"), w)), "2026-07-06T13:00:00.000Z");
  // DST starts on Sunday 2026-03-08: 09:00 EDT = 13:00Z.
  assert.equal(iso(nextInWindow(at("2026-03-08T06:00:00Z"), w)), "2026-03-08T13:00:00.000Z");
});

Deno.test("nextInWindow() handles a window that wraps midnight", () => {
  const w = parseWindow({ dow: "Tue", tz: "UTC", start: "22:00:00", end: "02:00:00" })!;
  // 2026-12-08 is a Tuesday.
  assert.equal(iso(nextInWindow(at("2026-12-08T23:00:00Z"), w)), "2026-12-08T23:00:00.000Z");
  assert.equal(iso(nextInWindow(at("2026-12-08T12:00:00Z"), w)), "2026-12-08T22:00:00.000Z");
});

Deno.test("parseScheduling() names the key of a bad value", () => {
  assert.throws(
    () => parseScheduling({ first_attempt: "tomorrow" }),
    /Cannot set scheduling key "first_attempt": "tomorrow" is not an RFC 3339 time/,
  );
  assert.throws(
    () => parseScheduling({ dow: "Funday", tz: "UTC", start: "09:00:00", end: "10:00:00" }),
    /"dow": "Funday" is not a day of the week/,
  );
  assert.throws(
    () => parseScheduling({ dow: "Mon", tz: "Mars/Olympus", start: "09:00:00", end: "10:00:00" }),
    /"tz": "Mars\/Olympus" is not a known time zone/,
  );
  assert.throws(
    () => parseScheduling({ dow: "Mon", tz: "UTC", start: "25:00:00", end: "10:00:00" }),
    /"start": "25:00:00" is not HH:MM:SS/,
  );
  assert.deepEqual(parseScheduling({ expires: "2027-01-01T00:00:00Z" }), {
    expires: "2027-01-01T00:00:00Z",
  });
});
