import assert from "node:assert/strict";
import { loadTestPolicy } from "./load_test_policy.ts";

Deno.test("kumo.http.build_client sends requests to a loopback server", async () => {
  const seen: {
    method: string;
    path: string;
    auth: string | null;
    ct: string | null;
    body: string;
  }[] = [];
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const u = new URL(req.url);
      seen.push({
        method: req.method,
        path: u.pathname + u.search,
        auth: req.headers.get("authorization"),
        ct: req.headers.get("content-type"),
        body: await req.text(),
      });
      if (u.pathname === "/fail") return new Response("nope", { status: 503 });
      return new Response(`hello ${req.method}`, { headers: { "x-reply": "yes" } });
    },
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  await using p = await loadTestPolicy(`
    kumo.on('t', function(base)
      local client = kumo.http.build_client { timeout = '5s' }
      local r = client:get(kumo.http.build_url(base .. '/get', { q = 'a b' })):send()
      assert(r:status_code() == 200 and r:status_is_success(), 'status')
      assert(r:status_reason() == 'OK', r:status_reason())
      assert(r:text() == 'hello GET' and r:bytes() == 'hello GET', r:text())
      assert(r:headers()['x-reply'] == 'yes', kumo.json_encode(r:headers()))
      local p = client:post(base .. '/post'):header('Content-Type', 'application/json')
        :basic_auth('user', 'pw'):body('{"a":1}'):send()
      assert(p:text() == 'hello POST', p:text())
      local f = client:post(base .. '/fail'):body('x'):send()
      assert(f:status_code() == 503 and f:status_reason() == 'Service Unavailable', f:status_reason())
      assert(f:text() == 'nope', 'error body')
      client:close()
      local ok, err = pcall(function() return client:get(base) end)
      assert(not ok and tostring(err):find('closed'), tostring(err))
      return 'ok'
    end)
  `);
  assert.equal(await p.run("t", base), "ok");
  assert.equal(seen[0].path, "/get?q=a+b");
  assert.equal(seen[1].method, "POST");
  assert.equal(seen[1].auth, "Basic " + btoa("user:pw"));
  assert.equal(seen[1].ct, "application/json");
  assert.equal(seen[1].body, '{"a":1}');
});

Deno.test("log_hooks:new_json finds kumo.http.build_client", async () => {
  await using p = await loadTestPolicy(`
    kumo.on('t', function()
      local c = kumo.http.build_client {}
      return type(c.post) == 'function' and type(c.close) == 'function'
    end)
  `);
  assert.equal(await p.run("t"), true);
});
