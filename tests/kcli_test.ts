/**
 * `kumo kcli …` as a real process against the real program's HTTP API
 * (cli.md §4): ids and pretty JSON on stdout, notes on stderr, tables,
 * `Error: request status <code>: <reason>. Response body: <text>` with
 * exit 1, usage errors with exit 2; `queue-summary --domain` filters by
 * the domain's MX site.
 */
import assert from "node:assert/strict";
import { startAdminKumo, waitUntil } from "./support/admin_kumo.ts";

const ROOT = new URL("..", import.meta.url).pathname;

async function kcli(endpoint: string, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}mod.ts`, "kcli", "--endpoint", endpoint, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("kcli subcommands against a running kumo", async () => {
  await using k = await startAdminKumo();
  const e = k.endpoint;

  const [sus, bounce, usage, noRq] = await Promise.all([
    kcli(e, "suspend", "--domain", "dest.test", "--reason", "maint"),
    kcli(e, "bounce", "--domain", "bounce.test", "--reason", "bad list", "--duration", "10m"),
    kcli(e, "bounce", "--reason", "no criteria"),
    kcli(e, "suspend-ready-q-list"),
  ]);
  assert.equal(noRq.code, 0, noRq.stderr);
  assert.equal(noRq.stdout, "No suspended ready queues\n");
  assert.equal(sus.code, 0, sus.stderr);
  const suspendId = (JSON.parse(sus.stdout) as { id: string }).id;
  assert.equal(sus.stdout, `{\n  "id": "${suspendId}"\n}\n`);
  assert.equal(bounce.code, 0, bounce.stderr);
  const bounceId = bounce.stdout.trim();
  assert.match(bounceId, /^[0-9a-f-]{36}$/);
  assert.match(bounce.stderr, /asynchronously/);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /^error: .*--everything/);

  const id = await k.send("a@dest.test");
  await waitUntil(
    async () => {
      const q = await k.call("GET", "/api/admin/inspect-sched-q/v1?queue_name=dest.test");
      return q.status === 200;
    },
    15_000,
    "dest.test queue",
  );

  const [slist, blist, bjson, insp, sched, summary] = await Promise.all([
    kcli(e, "suspend-list"),
    kcli(e, "bounce-list"),
    kcli(e, "bounce-list", "--json"),
    kcli(e, "inspect-message", id),
    kcli(e, "inspect-sched-q", "dest.test"),
    kcli(e, "queue-summary"),
  ]);
  assert.equal(slist.code, 0, slist.stderr);
  assert.equal((JSON.parse(slist.stdout) as { id: string }[])[0].id, suspendId);
  assert.equal(blist.code, 0, blist.stderr);
  assert.match(blist.stdout, /^ID\s+CAMPAIGN\s+TENANT\s+DOMAIN/);
  assert.match(blist.stdout, new RegExp(`${bounceId}.*bounce\\.test.*bad list`));
  assert.equal((JSON.parse(bjson.stdout) as { id: string }[])[0].id, bounceId);
  assert.equal(insp.code, 0, insp.stderr);
  const iv = JSON.parse(insp.stdout);
  assert.equal(iv.id, id);
  assert.equal(iv.message.recipient, "a@dest.test");
  assert.equal(sched.code, 0, sched.stderr);
  assert.equal(JSON.parse(sched.stdout).queue_name, "dest.test");
  assert.equal(summary.code, 0, summary.stderr);
  assert.match(summary.stdout, /SCHEDULED QUEUE/);
  assert.match(summary.stdout, /suspended domain=dest\.test/);

  const [bc, bc404, sc, filter, rebind] = await Promise.all([
    kcli(e, "bounce-cancel", "--id", bounceId),
    kcli(e, "bounce-cancel", "--id", "00000000-0000-4000-8000-000000000000"),
    kcli(e, "suspend-cancel", "--id", suspendId),
    kcli(e, "set-log-filter", "info"),
    kcli(e, "rebind", "--everything", "--reason", "r", "--set", "k=v"),
  ]);
  assert.equal(bc.code, 0, bc.stderr);
  assert.equal(bc.stdout, `removed ${bounceId}\n`);
  assert.equal(bc404.code, 1);
  assert.equal(
    bc404.stderr,
    "Error: request status 404: Not Found. Response body: " +
      "bounce entry 00000000-0000-4000-8000-000000000000 not found\n",
  );
  assert.equal(sc.stdout, `removed ${suspendId}\n`);
  assert.equal(filter.code, 0, filter.stderr);
  assert.equal(filter.stdout, "OK\n");
  assert.equal(rebind.code, 0, rebind.stderr);

  const rq = await kcli(
    e,
    "suspend-ready-q",
    "--name",
    "drill->mx.test@smtp_client",
    "--reason",
    "drill",
  );
  assert.equal(rq.code, 0, rq.stderr);
  const rqId = (JSON.parse(rq.stdout) as { id: string }).id;
  const rqList = await kcli(e, "suspend-ready-q-list");
  assert.equal(rqList.code, 0, rqList.stderr);
  assert.match(rqList.stdout, /^ID\s+NAME\s+REMAINING\s+REASON\n/);
  assert.match(
    rqList.stdout,
    new RegExp(`\\n${rqId}\\s+drill->mx\\.test@smtp_client\\s+\\d.*\\s+drill\\n$`),
  );
  await k.sink.waitFor(1, 15_000);

  // queue-summary --domain resolves the domain's MX (through the test's DNS
  // server) and keeps the ready queues of that site: bounce.test shares
  // dest.test's MX, so its summary shows the mx1.dest.test queue.
  await waitUntil(
    async () =>
      /total_messages_delivered\{service="smtp_client:unspecified->mx1\.dest\.test@smtp_client"\} 1/
        .test((await k.call("GET", "/metrics")).text),
    15_000,
    "the ready queue's delivery series",
  );
  const [byMx, other, failed] = await Promise.all([
    kcli(e, "queue-summary", "--domain", "bounce.test", "--name-server", k.dnsAddress),
    kcli(e, "queue-summary", "--domain", "dest.test", "--name-server", k.dnsAddress),
    kcli(e, "queue-summary", "--domain", "nowhere.test", "--name-server", k.dnsAddress),
  ]);
  assert.equal(byMx.code, 0, byMx.stderr);
  assert.match(
    byMx.stdout,
    /^SITE\s+SOURCE\s+PROTO\s+D\s+T\s+C\s+Q\nmx1\.dest\.test\s+unspecified\s+smtp_client\s+1\s/,
  );
  assert.doesNotMatch(byMx.stdout.split("SCHEDULED QUEUE")[1], /dest\.test/);
  assert.equal(other.code, 0, other.stderr);
  assert.match(other.stdout, /\nmx1\.dest\.test\s+unspecified\s+smtp_client\s+1\s/);
  assert.equal(failed.code, 0, failed.stderr);
  assert.match(
    failed.stderr,
    /^Cannot resolve MX of "nowhere\.test": .*; filtering by name instead\n$/,
  );
  assert.doesNotMatch(failed.stdout, /mx1\.dest\.test/);
});
