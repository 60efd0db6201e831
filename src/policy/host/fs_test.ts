import assert from "node:assert/strict";
import { loadTestPolicy } from "./load_test_policy.ts";

Deno.test("kumo.fs / kumo.glob / kumo.read_dir / kumo.secrets.load work on real files", async () => {
  await using p = await loadTestPolicy((dir) => `
    kumo.on('t', function()
      local dir = '${dir}'
      local f = kumo.fs.open(dir .. '/a.txt', 'w')
      f:write('hello ')
      f:write('world')
      f:close()
      local r = kumo.fs.open(dir .. '/a.txt')
      assert(r:read() == 'hello world', 'read back')
      r:close()
      local ok, err = pcall(function() return r:read() end)
      assert(not ok and tostring(err):find('closed'), tostring(err))
      local a = kumo.fs.open(dir .. '/a.txt', 'a')
      a:write('!')
      a:close()
      kumo.fs.open(dir .. '/b.toml', 'w'):close()
      local g = kumo.glob('*.txt', dir)
      assert(#g == 1 and g[1] == dir .. '/a.txt', kumo.json_encode(g))
      local g2 = kumo.fs.glob(dir .. '/*.{txt,toml}')
      assert(#g2 == 2, kumo.json_encode(g2))
      assert(#kumo.uncached_glob(dir .. '/*.lua') == 1, 'init.lua')
      local entries = kumo.read_dir(dir)
      assert(#entries == 3 and #kumo.fs.read_dir(dir) == 3, kumo.json_encode(entries))
      local m = kumo.fs.metadata_for_path(dir .. '/a.txt')
      assert(m.is_file and not m.is_dir and m.len == 12, kumo.json_encode(m))
      assert(m.modified > 1e9, 'modified')
      assert(kumo.fs.metadata_for_path(dir).is_dir, 'dir')
      assert(kumo.secrets.load(dir .. '/a.txt') == 'hello world!', 'secret from path')
      assert(kumo.secrets.load { key_data = 's3cret' } == 's3cret', 'key_data')
      assert(kumo.secrets.load { event_name = 'get_secret', event_args = { 'x' } } == 'from-event-x', 'event')
      local ok2, err2 = pcall(kumo.secrets.load, { vault_mount = 'secret', vault_path = 'dkim/x' })
      assert(not ok2 and tostring(err2):find('vault key sources are not supported'), tostring(err2))
      local ok3, err3 = pcall(kumo.fs.open, dir .. '/missing.txt')
      assert(not ok3 and tostring(err3):find('Cannot open'), tostring(err3))
      return 'ok'
    end)
    kumo.on('get_secret', function(arg) return 'from-event-' .. arg end)
  `);
  assert.equal(await p.run("t"), "ok");
});
