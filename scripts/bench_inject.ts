/**
 * HTTP inject benchmark: `POST /api/inject/v1` with batches of recipients
 * into a durable spool (fsync via group commit, Reception log on), beside
 * SMTP injection of the same messages into the same program in the same
 * run (the baseline).
 *
 * Delivery is kept out of the figures: the policy holds every message in
 * its scheduled queue (`msg:set_scheduling { first_attempt = <in 1 h> }`
 * from `smtp_server_message_received` and `http_message_generated` — one
 * Lua call per message on both paths), so nothing is attempted while the
 * runs are measured; after the runs the script checks on `/metrics` that
 * every message is still scheduled and none was attempted. Nothing is
 * resolved through the system resolver: the resolver points at a loopback
 * port and the queues route to a fixed `mx_list` on 127.0.0.1.
 *
 * Prints msgs/s and kumo CPU ms per message (utime+stime of its process from
 * /proc/<pid>/stat) for: SMTP (pipelined MAIL/RCPT/DATA, one recipient per
 * message), HTTP raw content (Static; the text is still parsed and
 * re-encoded as MIME per recipient), HTTP builder content (Jinja,
 * per-recipient substitution).
 *
 * Env: BENCH_RCPTS (default 10000), BENCH_BATCH (100), BENCH_HTTP_CONC (4),
 * BENCH_SESSIONS (4), BENCH_SIZE (1024).
 * Run: deno run -A scripts/bench_inject.ts
 */

import net from "node:net";
import type { Buffer } from "node:buffer";

const RCPTS = Number(Deno.env.get("BENCH_RCPTS") ?? 10000);
const BATCH = Number(Deno.env.get("BENCH_BATCH") ?? 100);
const HTTP_CONC = Number(Deno.env.get("BENCH_HTTP_CONC") ?? 4);
const SESSIONS = Number(Deno.env.get("BENCH_SESSIONS") ?? 4);
const SIZE = Number(Deno.env.get("BENCH_SIZE") ?? 1024);
const ROOT = new URL("..", import.meta.url).pathname;

/** utime+stime of a process in ms. */
function cpuMs(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

const line = "The quick brown fox jumps over the lazy dog, again and again. 0123456789\r\n";
const BODY = line.repeat(Math.max(1, Math.ceil(SIZE / line.length))).slice(0, SIZE);
const RAW = `From: bench@src.test\r\nSubject: bench\r\n\r\n${BODY}`;

async function startKumo(dir: string): Promise<{
  child: Deno.ChildProcess;
  smtpPort: number;
  http: string;
  stop: () => Promise<void>;
}> {
  await Deno.writeTextFile(
    `${dir}/init.lua`,
    `local kumo = require 'kumo'
kumo.on('init', function()
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'bench.test', relay_hosts = { '127.0.0.1' } }
  kumo.start_http_listener { listen = '127.0.0.1:0', hostname = 'bench.test' }
  kumo.define_spool { name = 'data', path = '${dir}/spool/data' }
  kumo.define_spool { name = 'meta', path = '${dir}/spool/meta' }
  kumo.configure_local_logs { log_dir = '${dir}/logs' }
  -- Loopback only: nothing may reach the system resolver.
  kumo.dns.configure_resolver { name_servers = { '127.0.0.1:9' } }
end)
kumo.on('get_queue_config', function()
  return kumo.make_queue_config {
    retry_interval = '1h',
    protocol = { smtp = { mx_list = { '[127.0.0.1]:9' } } },
  }
end)
-- Hold: the first attempt is an hour away, so no delivery overlaps the runs.
local hold_until = '${new Date(Date.now() + 3600_000).toISOString()}'
kumo.on('smtp_server_message_received', function(msg)
  msg:set_scheduling { first_attempt = hold_until }
end)
kumo.on('http_message_generated', function(msg)
  msg:set_scheduling { first_attempt = hold_until }
end)
`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}mod.ts`, "--policy", `${dir}/init.lua`],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.getReader();
  let text = "";
  const dec = new TextDecoder();
  const deadline = Date.now() + 30_000;
  while (!text.includes("initialization complete")) {
    if (Date.now() > deadline) throw new Error(`kumo did not start:\n${text}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`kumo exited:\n${text}`);
    text += dec.decode(value, { stream: true });
  }
  const drain = (async () => {
    for (;;) if ((await reader.read()).done) return;
  })();
  return {
    child,
    smtpPort: Number(/smtp listener on 127\.0\.0\.1:(\d+)/.exec(text)![1]),
    http: `http://127.0.0.1:${/http listener on 127\.0\.0\.1:(\d+)/.exec(text)![1]}`,
    stop: async () => {
      child.kill("SIGTERM");
      await child.status;
      await drain;
    },
  };
}

function recipients(tag: string, from: number, n: number) {
  return Array.from({ length: n }, (_, i) => ({
    email: `r${from + i}-${tag}@bench.test`,
    name: `R ${from + i}`,
  }));
}

async function benchHttp(base: string, tag: string, content: unknown, dialect: string) {
  let next = 0;
  let ok = 0;
  const worker = async () => {
    while (next < RCPTS) {
      const from = next;
      const n = Math.min(BATCH, RCPTS - from);
      next += n;
      const r = await fetch(`${base}/api/inject/v1`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          envelope_sender: "bounce@src.test",
          recipients: recipients(tag, from, n),
          content,
          template_dialect: dialect,
        }),
      });
      const body = await r.json();
      if (r.status !== 200 || body.fail_count !== 0) {
        throw new Error(`inject failed: ${r.status} ${JSON.stringify(body)}`);
      }
      ok += body.success_count;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: HTTP_CONC }, worker));
  if (ok !== RCPTS) throw new Error(`injected ${ok} of ${RCPTS}`);
  return (performance.now() - t0) / 1000;
}

/** One pipelined SMTP session sending `n` messages; resolves when all got 250. */
function smtpSession(port: number, tag: string, from: number, n: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    sock.setNoDelay(true);
    let buf = "";
    let sent = 0;
    let stage: "banner" | "ehlo" | "txn" | "data" | "quit" = "banner";
    let want = 1;
    const data = RAW.replace(/^\./gm, "..") + "\r\n.\r\n";
    const sendTxn = () => {
      const i = from + sent;
      sock.write(`MAIL FROM:<bounce@src.test>\r\nRCPT TO:<r${i}-${tag}@bench.test>\r\nDATA\r\n`);
      stage = "txn";
      want = 3;
    };
    sock.on("error", reject);
    sock.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      for (;;) {
        const m = /^(\d{3})([ -])[^\n]*\n/.exec(buf);
        if (!m) return;
        buf = buf.slice(m[0].length);
        if (m[2] === "-") continue;
        const code = Number(m[1]);
        if (code >= 400) return reject(new Error(`SMTP ${m[0].trim()} at ${stage}`));
        if (--want > 0) continue;
        if (stage === "banner") {
          sock.write("EHLO bench.test\r\n");
          stage = "ehlo";
          want = 1;
        } else if (stage === "ehlo") sendTxn();
        else if (stage === "txn") {
          sock.write(data);
          stage = "data";
          want = 1;
        } else if (stage === "data") {
          if (++sent < n) sendTxn();
          else {
            sock.write("QUIT\r\n");
            stage = "quit";
            want = 1;
          }
        } else {
          sock.destroy();
          resolve();
        }
      }
    });
  });
}

async function benchSmtp(port: number, tag: string) {
  const per = Math.ceil(RCPTS / SESSIONS);
  const t0 = performance.now();
  const jobs: Promise<void>[] = [];
  for (let s = 0, from = 0; from < RCPTS; s++, from += per) {
    jobs.push(smtpSession(port, tag, from, Math.min(per, RCPTS - from)));
  }
  await Promise.all(jobs);
  return (performance.now() - t0) / 1000;
}

/** Scheduled messages and delivery attempts so far, from `/metrics`. */
async function heldCheck(base: string): Promise<{ scheduled: number; attempts: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const num = (re: RegExp) => {
    let n = 0;
    for (const m of text.matchAll(re)) n += Number(m[1]);
    return n;
  };
  return {
    scheduled: num(/^scheduled_count_total ([0-9.e+]+)$/gm),
    attempts: num(
      /^total_messages_(?:delivered|transfail|fail)\{service="smtp_client"\} ([0-9.e+]+)$/gm,
    ),
  };
}

const dir = await Deno.makeTempDir({ prefix: "kumo-bench-inject-" });
const kumo = await startKumo(dir);
try {
  console.log(
    `inject: ${RCPTS} recipients × ${SIZE} B; HTTP batches of ${BATCH} × ${HTTP_CONC} concurrent; ` +
      `SMTP ${SESSIONS} sessions (fsync on)`,
  );
  const runs: [string, () => Promise<number>][] = [
    ["smtp (baseline)       ", () => benchSmtp(kumo.smtpPort, "s")],
    ["http raw (Static)     ", () => benchHttp(kumo.http, "h", RAW, "Static")],
    [
      "http builder (Jinja)  ",
      () =>
        benchHttp(kumo.http, "b", {
          from: { email: "bench@src.test", name: "Bench" },
          subject: "bench for {{ name }}",
          text_body: `Hello {{ name }},\n${BODY}`,
        }, "Jinja"),
    ],
  ];
  let base = NaN;
  let injected = 0;
  for (const [name, run] of runs) {
    const c0 = cpuMs(kumo.child.pid);
    const secs = await run();
    const cpu = (cpuMs(kumo.child.pid) - c0) / RCPTS;
    const rate = RCPTS / secs;
    if (Number.isNaN(base)) base = rate;
    console.log(
      `  ${name}: ${rate.toFixed(0).padStart(7)} msgs/s, ${cpu.toFixed(3)} CPU ms/msg` +
        (rate === base ? "" : `; ${(rate / base).toFixed(2)}× the SMTP rate`),
    );
    injected += RCPTS;
  }
  const held = await heldCheck(kumo.http);
  console.log(
    `  held: ${held.scheduled} of ${injected} messages scheduled, ${held.attempts} delivery attempts`,
  );
  if (held.scheduled !== injected || held.attempts !== 0) {
    throw new Error("deliveries overlapped the measured runs: the figures are not valid");
  }
} finally {
  await kumo.stop();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
