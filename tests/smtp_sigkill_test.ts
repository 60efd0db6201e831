/**
 * Crash safety: kumo is SIGKILLed while four clients are injecting; after a
 * restart every message that got `250 OK ids=…` is in both spools and is
 * enumerated (the 250 is sent only after both stores were synced).
 */
import assert from "node:assert/strict";
import { basePolicy, idsOf, RawSmtp, readSpool, startKumo } from "./support/kumo_process.ts";

Deno.test("every acknowledged message survives SIGKILL", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-kill-" });
  const policy = basePolicy(
    dir,
    "",
    "",
    `
kumo.on('spool_message_enumerated', function(msg) kumo.log_info('enumerated ' .. msg:id()) end)`,
  );
  const acked: string[] = [];
  {
    const kumo = await startKumo(dir, policy);
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
    while (acked.length < 60 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await kumo.kill();
    stop = true;
    await Promise.all(clients);
  }
  assert.ok(acked.length >= 60, `only ${acked.length} acknowledged`);
  for (const id of acked) {
    assert.ok(readSpool(`${dir}/spool/meta`, id) !== null, `meta of ${id} missing`);
    const data = readSpool(`${dir}/spool/data`, id);
    assert.ok(data !== null && data.length > 200, `data of ${id} missing`);
  }
  await using again = await startKumo(dir, policy);
  const err = again.stderr();
  for (const id of acked) assert.ok(err.includes(`enumerated ${id}`), `${id} not enumerated`);
  assert.equal(await again.stop(), 0);
});
