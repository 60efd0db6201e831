/**
 * End to end through the real program: Python smtplib → kumo-edge (mod.ts)
 * → DNS (tests/support/dns_server.ts) → SMTP sink on 127.0.0.x, with the
 * Delivery record read back from the local log files.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import { startSmtpSink } from "./support/smtp_sink.ts";

async function readLogs(dir: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile) continue;
    const bytes = await Deno.readFile(`${dir}/${e.name}`);
    let text: string;
    try {
      const { zstdDecompressSync } = await import("node:zlib");
      text = new TextDecoder().decode(zstdDecompressSync(bytes));
    } catch {
      text = new TextDecoder().decode(bytes);
    }
    for (const line of text.split("\n")) if (line.startsWith("{")) out.push(JSON.parse(line));
  }
  return out;
}

Deno.test("real program: smtplib in, lowest MX out from the source address, Delivery logged", async () => {
  await using dns = await startDnsServer({
    zones: {
      "dest.test": { MX: [{ pref: 10, host: "mx1.dest.test" }] },
      "mx1.dest.test": { A: ["127.0.0.2"] },
    },
  });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  const dir = await Deno.makeTempDir({ prefix: "kumo-e2e-" });
  const policy = `
local kumo = require 'kumo'
kumo.on('init', function()
  kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
  kumo.start_esmtp_listener { listen = '127.0.0.1:0' }
  kumo.define_spool { name = 'data', path = '${dir}/data' }
  kumo.define_spool { name = 'meta', path = '${dir}/meta' }
  kumo.configure_local_logs { log_dir = '${dir}/logs', max_segment_duration = '1s' }
end)
kumo.on('get_egress_source', function(name)
  return kumo.make_egress_source { name = name, source_address = '127.0.0.21', ehlo_domain = 'out.example.test' }
end)
kumo.on('get_egress_pool', function(name)
  return kumo.make_egress_pool { name = name, entries = { { name = 's1' } } }
end)
kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1s', egress_pool = 'p1' } end)
kumo.on('get_egress_path_config', function()
  return kumo.make_egress_path { smtp_port = ${sink.port}, prohibited_hosts = {}, enable_tls = 'Disabled' }
end)
`;
  await Deno.writeTextFile(`${dir}/init.lua`, policy);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "mod.ts", "--policy", `${dir}/init.lua`],
    cwd: new URL("..", import.meta.url).pathname,
    stderr: "piped",
    stdout: "null",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let port = 0;
  let buf = "";
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && !buf.includes("initialization complete")) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
  }
  const m = /smtp listener on 127\.0\.0\.1:(\d+)/.exec(buf);
  const drain = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += value;
    }
  })();
  try {
    assert.ok(m, `no listener line in: ${buf}`);
    port = Number(m![1]);
    const py = await new Deno.Command("python3", {
      args: [
        "-c",
        `import smtplib\ns=smtplib.SMTP('127.0.0.1', ${port})\ns.sendmail('a@src.test', ['b@dest.test'], 'Subject: hi\\r\\n\\r\\n.dot\\r\\nbody\\r\\n')\ns.quit()`,
      ],
    }).output();
    assert.ok(py.success, new TextDecoder().decode(py.stderr));
    const [got] = await sink.waitFor(1, 10_000);
    assert.equal(got.remoteAddress, "127.0.0.21");
    assert.equal(got.ehlo, "out.example.test");
    assert.deepEqual(got.rcptTo, ["b@dest.test"]);
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await drain;
  }
  const recs = await readLogs(`${dir}/logs`);
  const d = recs.find((r) => r.type === "Delivery");
  assert.ok(d, `no Delivery record in ${JSON.stringify(recs)}; stderr: ${buf}`);
  assert.equal(d.site, "s1->mx1.dest.test@smtp_client");
  assert.equal(d.egress_pool, "p1");
  assert.equal(d.egress_source, "s1");
  assert.match((d.source_address as { address: string }).address, /^127\.0\.0\.21:\d+$/);
  assert.equal(d.delivery_protocol, "ESMTP");
  await Deno.remove(dir, { recursive: true });
});
