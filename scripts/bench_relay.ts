/**
 * Relay benchmark: Postfix's `smtp-source` → MTA → `smtp-sink`, end to end
 * (until the sink has every message), in the same run for
 * - kumo (durable spool with fsync via group commit, logs on), and
 * - a private Postfix instance relaying the same load (own config, queue
 *   and data directories, smtpd on a free loopback port,
 *   `relayhost = [127.0.0.1]:SINKPORT`).
 * For each message size it prints msgs/s, MTA CPU ms per message (kumo:
 * utime+stime from /proc/<pid>/stat; Postfix: master plus every child, live
 * and reaped) and the ratios against Postfix. Finally kumo's memory per
 * queued message: the RSS delta with N messages held in a queue whose
 * destination refuses connections (retry in 1 h).
 *
 * Env: BENCH_MSGS (default 20000), BENCH_SESSIONS (20), BENCH_SIZES
 * ("1024,20480"), BENCH_SPOOL_KIND (default "RocksDB": the segment-log spool, fsync by group commit; "LocalDisk" = a file per record),
 * BENCH_HELD (messages for the memory figure; default BENCH_MSGS).
 * Run: deno run -A scripts/bench_relay.ts
 */

const MSGS = Number(Deno.env.get("BENCH_MSGS") ?? 20000);
const SESSIONS = Number(Deno.env.get("BENCH_SESSIONS") ?? 20);
const SIZES = (Deno.env.get("BENCH_SIZES") ?? "1024,20480").split(",").map(Number);
const SPOOL_KIND = Deno.env.get("BENCH_SPOOL_KIND") ?? "RocksDB";
const HELD = Number(Deno.env.get("BENCH_HELD") ?? MSGS);
const ROOT = new URL("..", import.meta.url).pathname;
const SOURCE = "/usr/sbin/smtp-source";
const SINK = "/usr/sbin/smtp-sink";
const POSTFIX = "/usr/sbin/postfix";

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

function statFields(pid: number): string[] | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** utime+stime in ms (plus reaped children's with `children`). */
function cpuMs(pid: number, children = false): number {
  const f = statFields(pid);
  if (f === null) return 0;
  let ticks = Number(f[11]) + Number(f[12]);
  if (children) ticks += Number(f[13]) + Number(f[14]);
  return (ticks * 1000) / 100; // USER_HZ
}

/** CPU of a process tree: the root with its reaped children, plus live children. */
function treeCpuMs(root: number): number {
  let total = cpuMs(root, true);
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^[0-9]+$/.test(e.name)) continue;
    const f = statFields(Number(e.name));
    if (f !== null && Number(f[1]) === root) total += cpuMs(Number(e.name), true);
  }
  return total;
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Number(m[1]) : 0;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** `smtp-sink -c` on a free port; `count()` is the messages it has accepted. */
async function startSink(): Promise<{ port: number; count(): number; stop(): Promise<void> }> {
  const port = freePort();
  const child = new Deno.Command(SINK, {
    args: [...(Deno.uid() === 0 ? ["-u", "nobody"] : []), "-c", `127.0.0.1:${port}`, "1000"],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let n = 0;
  let tail = "";
  const pump = (async () => {
    const dec = new TextDecoder();
    for await (const chunk of child.stdout) {
      tail = (tail + dec.decode(chunk)).slice(-200);
      const all = [...tail.matchAll(/mesg=(\d+)/g)];
      if (all.length) n = Number(all[all.length - 1][1]);
    }
  })();
  for (let i = 0; i < 50; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      await sleep(50);
    }
  }
  n = 0; // the probe connection carried no message
  return {
    port,
    count: () => n,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await pump.catch(() => {});
    },
  };
}

async function smtpSource(port: number, size: number, msgs: number, rcpt: string): Promise<void> {
  const out = await new Deno.Command(SOURCE, {
    args: [
      "-s",
      String(SESSIONS),
      "-m",
      String(msgs),
      "-l",
      String(size),
      "-f",
      "bench@source.test",
      "-t",
      rcpt,
      "-M",
      "source.test",
      `127.0.0.1:${port}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`smtp-source failed: ${new TextDecoder().decode(out.stderr)}`);
}

/** Wait until the sink has `n` messages (bounded); returns false on timeout. */
async function waitSink(sink: { count(): number }, n: number, timeoutMs: number) {
  const end = Date.now() + timeoutMs;
  while (sink.count() < n) {
    if (Date.now() > end) return false;
    await sleep(5);
  }
  return true;
}

interface Result {
  secs: number;
  cpu: number;
}

async function startKumo(dir: string, sinkPort: number) {
  const kind = SPOOL_KIND ? `, kind = '${SPOOL_KIND}'` : "";
  await Deno.writeTextFile(
    `${dir}/init.lua`,
    `local kumo = require 'kumo'
kumo.on('init', function()
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'bench.test' }
  kumo.define_spool { name = 'data', path = '${dir}/spool/data'${kind} }
  kumo.define_spool { name = 'meta', path = '${dir}/spool/meta'${kind} }
  kumo.configure_local_logs { log_dir = '${dir}/logs' }
end)
kumo.on('get_queue_config', function(domain)
  if domain == 'held.test' then
    return kumo.make_queue_config { retry_interval = '1h',
      protocol = { smtp = { mx_list = { '[127.0.0.1]:1' } } } }
  end
  return kumo.make_queue_config { protocol = { smtp = { mx_list = { '[127.0.0.1]:${sinkPort}' } } } }
end)
kumo.on('get_egress_path_config', function()
  return kumo.make_egress_path { prohibited_hosts = {}, enable_tls = 'Disabled',
    connect_timeout = '2s' }
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
  return {
    pid: child.pid,
    port,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await drain;
    },
  };
}

async function benchKumo(size: number): Promise<Result> {
  const dir = await Deno.makeTempDir({ prefix: "kumo-bench-relay-" });
  const sink = await startSink();
  const kumo = await startKumo(dir, sink.port);
  try {
    const cpu0 = cpuMs(kumo.pid);
    const t0 = performance.now();
    await smtpSource(kumo.port, size, MSGS, "sink@dest.test");
    if (!(await waitSink(sink, MSGS, 600_000))) {
      throw new Error(`kumo: sink got only ${sink.count()} of ${MSGS}`);
    }
    const secs = (performance.now() - t0) / 1000;
    return { secs, cpu: cpuMs(kumo.pid) - cpu0 };
  } finally {
    await kumo.stop();
    await sink.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** kumo's RSS growth per message held in a queue whose destination refuses connections. */
async function benchMemory(): Promise<{ perMsgBytes: number; held: number }> {
  const dir = await Deno.makeTempDir({ prefix: "kumo-bench-mem-" });
  const kumo = await startKumo(dir, 1);
  try {
    // Warm up (JIT, Lua contexts, the held queue itself) before the baseline.
    await smtpSource(kumo.port, 1024, 200, "held@held.test");
    await sleep(1500);
    const before = rssKb(kumo.pid);
    await smtpSource(kumo.port, 1024, HELD, "held@held.test");
    await sleep(3000); // let every first attempt fail and the messages settle in the queue
    const after = rssKb(kumo.pid);
    return { perMsgBytes: ((after - before) * 1024) / HELD, held: HELD };
  } finally {
    await kumo.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function benchPostfix(size: number): Promise<Result | string> {
  if (Deno.uid() !== 0) return "needs root to start a private Postfix";
  if (!(await exists(POSTFIX))) return "postfix not installed";
  const sink = await startSink();
  const dir = await Deno.makeTempDir({ prefix: "kumo-bench-pfr-" });
  await Deno.chmod(dir, 0o755);
  await Deno.mkdir(`${dir}/queue`);
  await Deno.mkdir(`${dir}/data`);
  await new Deno.Command("chown", { args: ["postfix", `${dir}/data`] }).output();
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/main.cf`,
    [
      "compatibility_level = 3.6",
      `queue_directory = ${dir}/queue`,
      `data_directory = ${dir}/data`,
      "inet_interfaces = 127.0.0.1",
      "inet_protocols = ipv4",
      "mynetworks = 127.0.0.0/8",
      "myhostname = postfix-bench.test",
      "mydestination =",
      `relayhost = [127.0.0.1]:${sink.port}`,
      "alias_maps =",
      "alias_database =",
      "smtpd_recipient_restrictions = permit_mynetworks, reject",
      "smtp_tls_security_level = none",
      `maillog_file = ${dir}/maillog`,
      `maillog_file_prefixes = ${dir}`,
      "",
    ].join("\n"),
  );
  const master = await Deno.readTextFile("/etc/postfix/master.cf");
  await Deno.writeTextFile(
    `${dir}/master.cf`,
    master.replace(/^smtp\s+inet\s.*$/m, `127.0.0.1:${port} inet n - n - - smtpd`),
  );
  const pf = (cmd: string) =>
    new Deno.Command(POSTFIX, { args: ["-c", dir, cmd], stdout: "null", stderr: "null" })
      .output();
  try {
    if (!(await pf("start")).success) return `postfix -c ${dir} start failed`;
    let masterPid = 0;
    const deadline = Date.now() + 10_000;
    while (masterPid === 0 && Date.now() < deadline) {
      try {
        masterPid = Number((await Deno.readTextFile(`${dir}/queue/pid/master.pid`)).trim());
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      } catch {
        masterPid = 0;
        await sleep(100);
      }
    }
    if (masterPid === 0) return "postfix did not start listening";
    const cpu0 = treeCpuMs(masterPid);
    const t0 = performance.now();
    await smtpSource(port, size, MSGS, "sink@dest.test");
    if (!(await waitSink(sink, MSGS, 600_000))) {
      return `postfix: sink got only ${sink.count()} of ${MSGS}`;
    }
    const secs = (performance.now() - t0) / 1000;
    return { secs, cpu: treeCpuMs(masterPid) - cpu0 };
  } finally {
    await pf("stop");
    await sink.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (!(await exists(SOURCE)) || !(await exists(SINK))) {
  console.log("bench_relay: skipped (postfix smtp-source/smtp-sink not installed)");
  Deno.exit(0);
}

console.log(
  `relay: smtp-source → MTA → smtp-sink, ${MSGS} msgs over ${SESSIONS} sessions, ` +
    `end to end (fsync on; kumo spool ${SPOOL_KIND ?? "default"})`,
);
const fmt = (rate: number) => `${rate.toFixed(0).padStart(6)} msgs/s`;
for (const size of SIZES) {
  const pf = await benchPostfix(size);
  let pfRate = NaN;
  let pfCpu = NaN;
  if (typeof pf === "string") console.log(`  ${size} B postfix : skipped (${pf})`);
  else {
    pfRate = MSGS / pf.secs;
    pfCpu = pf.cpu / MSGS;
    console.log(
      `  ${String(size).padStart(6)} B postfix : ${fmt(pfRate)}, ${pfCpu.toFixed(3)} CPU ms/msg`,
    );
  }
  const k = await benchKumo(size);
  const rate = MSGS / k.secs;
  const cpu = k.cpu / MSGS;
  const vs = Number.isNaN(pfRate)
    ? ""
    : `; vs postfix ${(rate / pfRate).toFixed(2)}× rate, ${(cpu / pfCpu).toFixed(2)}× CPU`;
  console.log(
    `  ${String(size).padStart(6)} B kumo    : ${fmt(rate)}, ${cpu.toFixed(3)} CPU ms/msg${vs}`,
  );
}
const mem = await benchMemory();
console.log(
  `  kumo memory: ${(mem.perMsgBytes / 1024).toFixed(2)} KiB RSS per queued message ` +
    `(${mem.held} × 1 KB held for an unreachable destination)`,
);
