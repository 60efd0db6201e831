import assert from "node:assert/strict";
import { loadTestPolicy } from "./load_test_policy.ts";

Deno.test("kumo.time objects have upstream's fields, tostring and arithmetic", async () => {
  await using p = await loadTestPolicy(`
    kumo.on('t', function()
      local t = kumo.time.with_ymd_hms(2000, 01, 02, 03, 04, 05)
      assert(tostring(t) == '2000-01-02 03:04:05 UTC', tostring(t))
      assert(t.year == 2000 and t.month == 1 and t.day == 2, 'ymd')
      assert(t.hour == 3 and t.minute == 4 and t.second == 5, 'hms')
      assert(t.unix_timestamp == 946782245, tostring(t.unix_timestamp))
      assert(t.rfc2822 == 'Sun, 2 Jan 2000 03:04:05 +0000', t.rfc2822)
      assert(t.rfc3339 == '2000-01-02T03:04:05+00:00', t.rfc3339)
      assert(t:format('%Y/%m/%d %H:%M:%S %a %b') == '2000/01/02 03:04:05 Sun Jan', t:format('%Y/%m/%d'))
      local t2 = kumo.time.parse_rfc3339('2000-01-02T04:04:05+01:00')
      assert(t == t2, 'rfc3339 with offset equals')
      local t3 = kumo.time.parse_rfc2822('Sun, 2 Jan 2000 03:04:05 +0000')
      assert(t3 == t, 'rfc2822')
      local d = kumo.time.parse_duration('5m')
      assert(d.seconds == 300 and d.milliseconds == 300000, 'delta fields')
      assert(tostring(d) == '5m' and d.human == '5m', tostring(d))
      local later = t + d
      assert(later.minute == 9, 'add')
      local diff = later - t
      assert(diff == d, 'time - time == delta')
      assert((later - d) == t, 'time - delta')
      assert(t < later, 'lt')
      assert(kumo.time.parse_duration(-2).seconds == -2, 'negative seconds')
      local u = kumo.time.from_unix_timestamp(1.5)
      assert(u.unix_timestamp_millis == 1500, 'fractional timestamp')
      assert(kumo.time.now().year >= 2024, 'now')
      local ok, err = pcall(kumo.time.parse_rfc3339, 'yesterday')
      assert(not ok and tostring(err):find('RFC 3339'), tostring(err))
      local timer = kumo.time.start_timer('x')
      kumo.time.sleep(0.01)
      local secs = timer:done()
      assert(secs >= 0.005, 'timer ' .. tostring(secs))
      assert(timer:done() == nil, 'done twice')
      do local t2 <close> = kumo.time.start_timer('y') end
      local e = kumo.time.now().elapsed
      assert(e.seconds >= 0 and e.seconds < 5, 'elapsed')
      return 'ok'
    end)
  `);
  assert.equal(await p.run("t"), "ok");
});

Deno.test("a wrong kumo.time call reports the policy line", async () => {
  await using p = await loadTestPolicy(
    `kumo.on('t', function()\n  local t = kumo.time.with_ymd_hms(2000, 13, 1, 0, 0, 0)\n  return t\nend)`,
  );
  await assert.rejects(p.run("t"), /init\.lua:2:.*invalid date/);
});
