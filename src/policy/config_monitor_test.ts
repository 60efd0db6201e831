/**
 * Unit tests for the config monitor's globs and epoch bumps
 * (src/policy/config_monitor.ts). Place on the path: beside it, retiring
 * policy contexts when policy files change.
 */
import assert from "node:assert/strict";
import { evalGlobs, globBase, globToRegExp, startConfigMonitor } from "./config_monitor.ts";

Deno.test("globToRegExp() handles **, *, ? and {a,b}", () => {
  const re = globToRegExp("/opt/kumomta/etc/**/*.{lua,json,toml,yaml}");
  assert.ok(re.test("/opt/kumomta/etc/policy/init.lua"));
  assert.ok(re.test("/opt/kumomta/etc/sources.toml"));
  assert.ok(re.test("/opt/kumomta/etc/a/b/c.json"));
  assert.ok(!re.test("/opt/kumomta/etc/policy/init.luac"));
  assert.ok(!re.test("/opt/kumomta/other/x.lua"));
  assert.equal(globBase("/opt/kumomta/etc/**/*.lua"), "/opt/kumomta/etc");
});

Deno.test("the monitor bumps the epoch when a watched file changes", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/a.toml`, "x = 1\n");
  assert.deepEqual(evalGlobs([`${dir}/**/*.toml`]), [`${dir}/a.toml`]);
  let bumps = 0;
  const stop = startConfigMonitor(() => [`${dir}/**/*.toml`], () => bumps++, 20);
  try {
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(bumps, 0);
    await Deno.writeTextFile(`${dir}/a.toml`, "x = 2\n");
    const t0 = Date.now();
    while (bumps === 0 && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 20));
    assert.equal(bumps, 1);
  } finally {
    stop();
    await Deno.remove(dir, { recursive: true });
  }
});
