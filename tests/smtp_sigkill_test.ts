/**
 * Crash safety, for each spool kind (`LocalDisk` files, `RocksDB` = the
 * segment-log spool): kumo is SIGKILLed while four clients are injecting;
 * after a restart every message that got `250 OK ids=…` is in both spools
 * and is enumerated (the 250 is sent only after both stores were synced).
 */
import assert from "node:assert/strict";
import type { SpoolKind } from "../src/spool/mod.ts";
import { startDnsServer } from "./support/dns_server.ts";
import { basePolicy, idsOf, RawSmtp, readSpoolRecords, startKumo } from "./support/kumo_process.ts";

/** basePolicy with both spools of `kind` and DNS on the test's own server. */
function policy(dir: string, kind: SpoolKind, dns: string): string {
  return basePolicy(
    dir,
    "",
    `kumo.dns.configure_resolver { name_servers = { '${dns}' } }`,
    `
kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1h' } end)
local hold_until = '${new Date(Date.now() + 3600_000).toISOString()}'
kumo.on('smtp_server_message_received', function(msg)
  msg:set_scheduling { first_attempt = hold_until }
end)
kumo.on('spool_message_enumerated', function(msg) kumo.log_info('enumerated ' .. msg:id()) end)`,
  ).replaceAll(/kumo\.define_spool \{ name = '(data|meta)',/g, `$& kind = '${kind}',`);
}

for (const kind of ["LocalDisk", "RocksDB"] as const) {
  Deno.test(`every acknowledged message survives SIGKILL (${kind} spool)`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "kumo-kill-" });
    // Messages are held an hour (and y.test is never answered): none is delivered.
    await using dns = await startDnsServer({ drop: ["y.test"] });
    const text = policy(dir, kind, dns.address);
    assert.equal(text.match(new RegExp(`kind = '${kind}'`, "g"))?.length, 2);
    const acked: string[] = [];
    {
      const kumo = await startKumo(dir, text);
      let stop = false;
      const inject = async (n: number) => {
        const c = await RawSmtp.connect(kumo.port);
        try {
          if ((await c.reply()) === null) return;
          await c.cmd(`EHLO c${n}.test`);
          for (let i = 0; !stop && i < 500; i++) {
            c.send(
              `MAIL FROM:<s@x.test>\r\nRCPT TO:<r${n}-${i}@y.test>\r\nDATA\r\n` +
                `Subject: ${n}-${i}\r\n\r\n${"body line\r\n".repeat(20)}.\r\n`,
            );
            const replies = [await c.reply(), await c.reply(), await c.reply(), await c.reply()];
            if (replies.includes(null)) return;
            acked.push(...idsOf(replies[3]));
          }
        } catch {
          // the server vanished mid-reply
        } finally {
          c.close();
        }
      };
      const clients = [1, 2, 3, 4].map(inject);
      const deadline = Date.now() + 10_000;
      while (acked.length < 60 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
      }
      await kumo.kill();
      stop = true;
      await Promise.all(clients);
    }
    assert.ok(acked.length >= 60, `only ${acked.length} acknowledged`);
    // The kind's own layout: segment log (RocksDB) or one file per record.
    const layout = kind === "RocksDB" ? "log" : "data";
    for (const s of ["data", "meta"]) {
      assert.ok(Deno.statSync(`${dir}/spool/${s}/${layout}`).isDirectory, `${kind} layout`);
    }
    const metas = await readSpoolRecords(`${dir}/spool/meta`, kind, acked);
    const datas = await readSpoolRecords(`${dir}/spool/data`, kind, acked);
    for (const id of acked) {
      assert.ok(metas.has(id), `meta of ${id} missing`);
      assert.ok((datas.get(id)?.length ?? 0) > 200, `data of ${id} missing`);
      assert.match(new TextDecoder().decode(datas.get(id)), /\r\nSubject: \d-\d+\r\n\r\nbody line/);
    }
    await using again = await startKumo(dir, text);
    // Spool-in runs in the background: wait (bounded) for every id.
    const until = Date.now() + 15_000;
    while (
      !acked.every((id) => again.stderr().includes(`enumerated ${id}`)) && Date.now() < until
    ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const err = again.stderr();
    for (const id of acked) assert.ok(err.includes(`enumerated ${id}`), `${id} not enumerated`);
    assert.equal(await again.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  });
}
