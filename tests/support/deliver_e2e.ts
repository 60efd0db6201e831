/**
 * Test support for the delivery scenarios that run through the real
 * program: inject mail with swaks (one transaction per run) or Python's
 * smtplib (many messages in one session), read log records from segments
 * while kumo is still running, and start a private HAProxy on loopback that
 * accepts PROXY v2 and connects on from the address the header asks for.
 *
 * Loopback only; every wait is bounded.
 *
 * @module
 */

import net from "node:net";
import { zstdDecompressSync } from "node:zlib";

/** One message to inject: recipient and subject (the subject identifies it at the sink). */
export interface Injection {
  rcpt: string;
  subject: string;
  sender?: string;
}

/**
 * Send every message over one SMTP session to `127.0.0.1:port` with Python
 * smtplib; rejects when Python reports an error.
 */
export async function injectWithSmtplib(port: number, mails: Injection[]): Promise<void> {
  const script = `
import json, smtplib, sys
mails = json.load(sys.stdin)
s = smtplib.SMTP('127.0.0.1', ${port}, timeout=30)
s.ehlo('client.test')
for m in mails:
    body = 'From: <%s>\\r\\nTo: <%s>\\r\\nSubject: %s\\r\\n\\r\\n.leading dot\\r\\nbody\\r\\n' % (m.get('sender', 's@src.test'), m['rcpt'], m['subject'])
    s.sendmail(m.get('sender', 's@src.test'), [m['rcpt']], body)
s.quit()
`;
  const child = new Deno.Command("python3", {
    args: ["-c", script],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify(mails)));
  await w.close();
  const out = await child.output();
  if (!out.success) {
    throw new Error(`smtplib injection failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** One swaks run: a single SMTP transaction, so one message per recipient after bifurcation. */
export interface SwaksInjection {
  /** Envelope recipients (any number: kumo splits them into one message each). */
  to: string[];
  subject: string;
  from?: string;
}

/**
 * Send one transaction to `127.0.0.1:port` with swaks (Debian `swaks`): EHLO
 * `client.test`, the given Subject, a `To:` header that does not list the
 * recipients (so long lists stay within the line limit) and a body whose
 * first line starts with a dot. Rejects when swaks is missing or reports an
 * error.
 */
export async function injectWithSwaks(port: number, mail: SwaksInjection): Promise<void> {
  if (!(await haveCommand("swaks"))) {
    throw new Error("Cannot inject with swaks: it is not installed (apt-get install -y swaks)");
  }
  const out = await new Deno.Command("swaks", {
    args: [
      "--server",
      `127.0.0.1:${port}`,
      "--helo",
      "client.test",
      "--from",
      mail.from ?? "s@src.test",
      "--to",
      mail.to.join(","),
      "--header",
      `Subject: ${mail.subject}`,
      "--header",
      "To: undisclosed-recipients:;",
      "--body",
      ".leading dot\nbody",
      "--silent",
      "2",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  if (!out.success) {
    const dec = new TextDecoder();
    throw new Error(
      `swaks injection failed: ${dec.decode(out.stderr)} ${dec.decode(out.stdout)}`.trim(),
    );
  }
}

/** Whether an executable is on PATH (or at an absolute path). */
export async function haveCommand(cmd: string): Promise<boolean> {
  try {
    const out = await new Deno.Command("sh", {
      args: ["-c", `command -v ${cmd}`],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

/**
 * Every record in the log segments of `logDir` that can be read now
 * (segments still being written and not yet decodable are skipped).
 */
export function readLogsNow(logDir: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  let names: string[] = [];
  try {
    names = [...Deno.readDirSync(logDir)].filter((e) => e.isFile).map((e) => e.name).sort();
  } catch {
    return out;
  }
  const dec = new TextDecoder();
  for (const n of names) {
    let text: string;
    try {
      const bytes = Deno.readFileSync(`${logDir}/${n}`);
      try {
        text = dec.decode(zstdDecompressSync(bytes));
      } catch {
        text = dec.decode(bytes);
      }
    } catch {
      continue;
    }
    for (const line of text.split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        out.push(JSON.parse(line));
      } catch { /* partial line */ }
    }
  }
  return out;
}

/** Poll `readLogsNow` until `pred` holds for the records; returns them. */
export async function waitForLogs(
  logDir: string,
  pred: (recs: Record<string, unknown>[]) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<Record<string, unknown>[]> {
  const end = Date.now() + timeoutMs;
  let recs: Record<string, unknown>[] = [];
  while (Date.now() < end) {
    recs = readLogsNow(logDir);
    if (pred(recs)) return recs;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `timed out waiting for ${what}; records: ${
      JSON.stringify(recs.map((r) => [r.type, r.recipient, (r.response as { code: number }).code]))
    }`,
  );
}

/** A free TCP port on 127.0.0.1 (bound and released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A running private HAProxy. */
export interface HaProxy extends AsyncDisposable {
  /** `127.0.0.1:PORT` to use as `ha_proxy_server`. */
  readonly server: string;
}

/**
 * Start HAProxy in the foreground on loopback: one frontend that accepts
 * PROXY v2 (`accept-proxy`) and a transparent backend that connects to the
 * destination named in the header from the source named in the header
 * (`usesrc clientip`). Returns null (with the reason) when it cannot run.
 */
export async function startHaProxy(
  dir: string,
): Promise<HaProxy | { skipped: string }> {
  const bin = "/usr/sbin/haproxy";
  try {
    await Deno.stat(bin);
  } catch {
    return { skipped: `${bin} is not installed (apt-get install -y haproxy)` };
  }
  const port = await freePort();
  const cfg = `global
  log stdout format raw local0 err
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend kumo_out
  bind 127.0.0.1:${port} accept-proxy
  default_backend to_dest
backend to_dest
  server dest 0.0.0.0:0 source 0.0.0.0 usesrc clientip
`;
  await Deno.writeTextFile(`${dir}/haproxy.cfg`, cfg);
  const child = new Deno.Command(bin, {
    args: ["-db", "-f", `${dir}/haproxy.cfg`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    return (await output).join("");
  };
  // Wait until it listens (bounded).
  const end = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: "127.0.0.1", port });
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > end) {
      const text = await stop();
      return { skipped: `haproxy did not start: ${text.slice(0, 500)}` };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    server: `127.0.0.1:${port}`,
    async [Symbol.asyncDispose]() {
      await stop();
    },
  };
}
