import assert from "node:assert/strict";
import { loadTestPolicy } from "./load_test_policy.ts";
import { Message } from "../../message/message.ts";
import type { PolicyRuntime } from "../runtime.ts";

Deno.test("kumo.make_message builds a Message usable with msg methods; inject_message uses the runtime", async () => {
  const injected: [Message, boolean][] = [];
  const runtime: PolicyRuntime = {};
  await using p = await loadTestPolicy(
    `
    kumo.on('t', function()
      local msg = kumo.make_message('a@src.test', 'b@dest.test', 'Subject: hi\\r\\n\\r\\nbody\\r\\n')
      msg:set_meta('tenant', 'shop')
      assert(msg:get_first_named_header_value('Subject') == 'hi', 'header')
      assert(msg:sender().domain == 'src.test', 'sender')
      assert(msg:recipient().email == 'b@dest.test', 'recipient')
      assert(msg:queue_name() == 'shop@dest.test', msg:queue_name())
      kumo.inject_message(msg)
      kumo.inject_message(kumo.make_message(msg:sender(), 'c@dest.test', 'x'), true)
      return #msg:id()
    end)
    kumo.on('unbound', function()
      local ok, err = pcall(kumo.inject_message, kumo.make_message('a@x.test', 'b@y.test', 'x'))
      local ok2, err2 = pcall(kumo.api.admin.bounce.list)
      return tostring(err) .. '|' .. tostring(err2)
    end)
  `,
    { runtime },
  );
  const unbound = await p.run("unbound") as string;
  assert.match(unbound, /Cannot call kumo\.inject_message: the queue manager is not running/);
  assert.match(unbound, /Cannot call kumo\.api\.admin\.bounce\.list/);

  runtime.inject = (msg, deferred) => {
    injected.push([msg, deferred]);
    return Promise.resolve();
  };
  assert.equal(await p.run("t"), 32);
  assert.equal(injected.length, 2);
  assert.ok(injected[0][0] instanceof Message);
  assert.equal(injected[0][0].meta.tenant, "shop");
  assert.equal(injected[0][1], false);
  assert.equal(injected[1][0].recipients[0].email, "c@dest.test");
  assert.equal(injected[1][1], true);
});

Deno.test("kumo.api.admin.* call the runtime's admin levers", async () => {
  const calls: unknown[] = [];
  const runtime: PolicyRuntime = {
    admin: {
      bounce: (b) => (calls.push(["bounce", b]), "id-b"),
      listBounces: () => [{ id: "id-b" }],
      cancelBounce: (id) => id === "id-b",
      suspend: (b) => (calls.push(["suspend", b]), "id-s"),
      listSuspensions: () => [],
      cancelSuspension: () => false,
      suspendReadyQueue: (b) => (calls.push(["srq", b]), "id-r"),
      listReadySuspensions: () => [],
      cancelReadySuspension: () => true,
    },
  };
  await using p = await loadTestPolicy(
    `
    kumo.on('t', function()
      local r = kumo.api.admin.bounce.bounce { reason = 'bad', domain = 'dest.test' }
      assert(r.id == 'id-b' and r.total_bounced == 0, kumo.json_encode(r))
      assert(kumo.api.admin.bounce.list()[1].id == 'id-b', 'list')
      assert(kumo.api.admin.bounce.delete('id-b') == true, 'delete')
      assert(kumo.api.admin.bounce.delete { id = 'nope' } == false, 'delete table form')
      assert(kumo.api.admin.suspend.suspend { reason = 'wait', tenant = 't' }.id == 'id-s', 'suspend')
      assert(#kumo.api.admin.suspend.list() == 0, 'suspend list')
      assert(kumo.api.admin.suspend_ready_q.suspend { name = 'q', reason = 'r' }.id == 'id-r', 'srq')
      assert(kumo.api.admin.suspend_ready_q.delete('id-r') == true, 'srq delete')
      return 'ok'
    end)
  `,
    { runtime },
  );
  assert.equal(await p.run("t"), "ok");
  assert.deepEqual(calls[0], ["bounce", { reason: "bad", domain: "dest.test" }]);
});

Deno.test("kumo.spawn_task runs the event with the args array, not under --validate", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const source = `
      kumo.on('t', function(path)
        kumo.spawn_task { event_name = 'bg', args = { path, 'two' } }
        return 'spawned'
      end)
      kumo.on('bg', function(args)
        kumo.sleep(0.01)
        local f = kumo.fs.open(args[1], 'w')
        f:write(args[2] .. ':' .. #args)
        f:close()
      end)
    `;
    {
      await using p = await loadTestPolicy(source);
      assert.equal(await p.run("t", `${dir}/out`), "spawned");
      let text = "";
      for (let i = 0; i < 200 && text === ""; i++) {
        await new Promise((r) => setTimeout(r, 25));
        text = await Deno.readTextFile(`${dir}/out`).catch(() => "");
      }
      assert.equal(text, "two:2");
    }
    {
      await using p = await loadTestPolicy(source, { validating: true });
      assert.equal(await p.run("t", `${dir}/out2`), "spawned");
      await new Promise((r) => setTimeout(r, 100));
      await assert.rejects(Deno.stat(`${dir}/out2`), Deno.errors.NotFound);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
