/**
 * Relay decisions (queues-and-delivery.md §9.3, lua-api.md §6.5) with swaks
 * connecting from 127.0.0.2: refused under the default relay_hosts, allowed
 * to a `relay_to` domain and from a `relay_from` sender domain.
 */
import assert from "node:assert/strict";
import { basePolicy, readLogRecords, run, startKumo } from "./support/kumo_process.ts";

function swaks(port: number, from: string, to: string) {
  return run("swaks", [
    "--server",
    `127.0.0.1:${port}`,
    "--local-interface",
    "127.0.0.2",
    "--from",
    from,
    "--to",
    to,
    "--helo",
    "relay.test",
    "--body",
    "relay check",
    "--timeout",
    "10",
  ]);
}

Deno.test("relay refused from 127.0.0.2 unless a listener domain allows it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-relay-" });
  await using kumo = await startKumo(
    dir,
    basePolicy(
      dir,
      "",
      "",
      `
kumo.on('get_listener_domain', function(domain, listener, conn_meta)
  if domain == 'inbound.test' then return kumo.make_listener_domain { relay_to = true } end
  if domain == 'sender.test' then return kumo.make_listener_domain { relay_from = { '127.0.0.2' } } end
end)`,
    ),
  );
  const refused = await swaks(kumo.port, "a@elsewhere.test", "b@gmail.test");
  assert.match(refused.stdout, /<\*\* 550 5\.7\.1 relaying not permitted for 127\.0\.0\.2:\d+/);
  const relayTo = await swaks(kumo.port, "a@elsewhere.test", "b@inbound.test");
  assert.match(relayTo.stdout, /<- {2}250 OK ids=[0-9a-f]{32}/, relayTo.stdout);
  const relayFrom = await swaks(kumo.port, "a@sender.test", "b@gmail.test");
  assert.match(relayFrom.stdout, /<- {2}250 OK ids=[0-9a-f]{32}/, relayFrom.stdout);
  assert.equal(await kumo.stop(), 0);

  const recs = readLogRecords(`${dir}/logs`);
  const rej = recs.filter((r) => r.type === "Rejection");
  assert.equal(rej.length, 1);
  assert.equal((rej[0].response as { code: number }).code, 550);
  assert.deepEqual(rej[0].peer_address, { name: "relay.test", addr: "127.0.0.2" });
  assert.deepEqual(
    recs.filter((r) => r.type === "Reception").map((r) => r.recipient),
    ["b@inbound.test", "b@gmail.test"],
  );
});

Deno.test("default relay_hosts: 127.0.0.1 relays, 127.0.0.2 does not", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-relay2-" });
  await using kumo = await startKumo(dir, basePolicy(dir));
  const refused = await swaks(kumo.port, "a@x.test", "b@y.test");
  assert.match(refused.stdout, /550 5\.7\.1 relaying not permitted for 127\.0\.0\.2:/);
  const ok = await run("swaks", [
    "--server",
    `127.0.0.1:${kumo.port}`,
    "--from",
    "a@x.test",
    "--to",
    "b@y.test",
    "--timeout",
    "10",
  ]);
  assert.match(ok.stdout, /250 OK ids=/);
  assert.equal(await kumo.stop(), 0);
});
