/**
 * Inbound benchmark: Postfix's `smtp-source` injecting into kumo (durable
 * spool, fsync on every acknowledged message via group commit, Reception
 * log on) side by side with `smtp-source` → `smtp-sink` (the raw loopback
 * SMTP ceiling) in the same run.
 *
 * Prints msgs/s for both, kumo's CPU ms per message (utime+stime from
 * /proc/<pid>/stat, before/after) and the ratios.
 *
 * Env: BENCH_MSGS (default 20000), BENCH_SESSIONS (20), BENCH_SIZE (1024).
 * Run: deno run -A scripts/bench_inbound.ts
 */

const MSGS = Number(Deno.env.get("BENCH_MSGS") ?? 20000);
const SESSIONS = Number(Deno.env.get("BENCH_SESSIONS") ?? 20);
const SIZE = Number(Deno.env.get("BENCH_SIZE") ?? 1024);
const ROOT = new URL("..", import.meta.url).pathname;
const SOURCE = "/usr/sbin/smtp-source";
const SINK = "/usr/sbin/smtp-sink";

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

/** utime+stime of a process in ms. */
function cpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

async function smtpSource(port: number): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command(SOURCE, {
    args: [
      "-s",
      String(SESSIONS),
      "-m",
      String(MSGS),
      "-l",
      String(SIZE),
      "-f",
      "bench@source.test",
      "-t",
      "sink@dest.test",
      "-M",
      "source.test",
      `127.0.0.1:${port}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const secs = (performance.now() - t0) / 1000;
  if (!out.success) throw new Error(`smtp-source failed: ${new TextDecoder().decode(out.stderr)}`);
  return secs;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function benchSink(): Promise<number> {
  const port = freePort();
  const sink = new Deno.Command(SINK, {
    // smtp-sink refuses to run as root without -u.
    args: [...(Deno.uid() === 0 ? ["-u", "nobody"] : []), "-c", `127.0.0.1:${port}`, "1000"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await new Promise((r) => setTimeout(r, 300));
  try {
    return await smtpSource(port);
  } finally {
    sink.kill("SIGTERM");
    await sink.status;
  }
}

async function benchKumo(): Promise<{ secs: number; cpu: number }> {
  const dir = await Deno.makeTempDir({ prefix: "kumo-bench-in-" });
  await Deno.writeTextFile(
    `${dir}/init.lua`,
    `local kumo = require 'kumo'
kumo.on('init', function()
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'bench.test' }
  kumo.define_spool { name = 'data', path = '${dir}/spool/data' }
  kumo.define_spool { name = 'meta', path = '${dir}/spool/meta' }
  kumo.configure_local_logs { log_dir = '${dir}/logs' }
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
  const port = Number(/smtp listener on 127\.0\.0\.1:(\d+)/.exec(text)![1]);
  try {
    const cpu0 = cpuMs(child.pid);
    const secs = await smtpSource(port);
    const cpu = cpuMs(child.pid) - cpu0;
    return { secs, cpu };
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await drain;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (!(await exists(SOURCE)) || !(await exists(SINK))) {
  console.log("bench_inbound: skipped (postfix smtp-source/smtp-sink not installed)");
  Deno.exit(0);
}

console.log(`inbound: ${MSGS} msgs × ${SIZE} B over ${SESSIONS} sessions`);
const sinkSecs = await benchSink();
const sinkRate = MSGS / sinkSecs;
console.log(`  smtp-sink direct : ${sinkRate.toFixed(0).padStart(7)} msgs/s`);
const k = await benchKumo();
const kumoRate = MSGS / k.secs;
console.log(
  `  kumo (spool+log) : ${kumoRate.toFixed(0).padStart(7)} msgs/s, ` +
    `${(k.cpu / MSGS).toFixed(3)} CPU ms/msg`,
);
console.log(
  `  ratio kumo/sink  : ${(kumoRate / sinkRate).toFixed(2)} (throughput), ` +
    `${(sinkSecs / k.secs).toFixed(2)} (time)`,
);
