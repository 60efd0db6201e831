/**
 * Test support: run the real kumo program with a policy in a temp dir and
 * talk to it over loopback — start/stop (SIGTERM or SIGKILL), a raw SMTP
 * client over node:net, and readers for the spool and the zstd log segments.
 *
 * Used by the end-to-end reception tests in tests/*_test.ts. Loopback only;
 * every wait is bounded.
 *
 * @module
 */

import net from "node:net";
import type { Buffer } from "node:buffer";
import { zstdDecompressSync } from "node:zlib";
import { openSpool, type SpoolKind } from "../../src/spool/mod.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

/** A running kumo process. */
export interface KumoProcess extends AsyncDisposable {
  dir: string;
  port: number;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** SIGTERM (or `signal`) and wait for exit; returns the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
}

/**
 * The standard policy prelude: listener, spools and logs inside `dir`. A
 * policy that does not point `kumo.dns.configure_resolver` at the test's own
 * DNS server gets an empty test resolver (every name NXDOMAIN, answered in
 * process), so no lookup ever reaches the system resolver.
 */
export function basePolicy(dir: string, listenerExtra = "", initExtra = "", extra = ""): string {
  const dns = /configure(_test)?_resolver/.test(initExtra + extra)
    ? ""
    : "kumo.dns.configure_test_resolver {}";
  return `local kumo = require 'kumo'
kumo.on('init', function()
  ${dns}
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'mx.test', ${listenerExtra} }
  kumo.define_spool { name = 'data', path = '${dir}/spool/data' }
  kumo.define_spool { name = 'meta', path = '${dir}/spool/meta' }
  kumo.configure_local_logs { log_dir = '${dir}/logs', meta = { '*' } }
  ${initExtra}
end)
${extra}
`;
}

/** Write `policy` to `<dir>/init.lua` and start kumo; resolves once it accepts mail. */
export async function startKumo(
  dir: string,
  policy: string,
  timeoutMs = 20_000,
): Promise<KumoProcess> {
  await Deno.writeTextFile(`${dir}/init.lua`, policy);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}mod.ts`, "--policy", `${dir}/init.lua`],
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const dec = new TextDecoder();
  const reader = child.stderr.getReader();
  let port = 0;
  const pumpDone = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      text += dec.decode(value, { stream: true });
    }
  })();
  const deadline = Date.now() + timeoutMs;
  while (!text.includes("initialization complete")) {
    if (Date.now() > deadline) {
      try {
        child.kill("SIGKILL");
      } catch { /* it exited early: the error below shows why */ }
      await child.status;
      throw new Error(`kumo did not start:\n${text}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const m = /smtp listener on 127\.0\.0\.1:(\d+)/.exec(text);
  if (m) port = Number(m[1]);
  let exited: Promise<number> | null = null;
  const wait = () =>
    exited ??= (async () => {
      const st = await child.status;
      await pumpDone;
      return st.code;
    })();
  return {
    dir,
    port,
    stderr: () => text,
    stop: async (signal: Deno.Signal = "SIGTERM") => {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      return await wait();
    },
    kill: async () => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await wait();
    },
    [Symbol.asyncDispose]: async () => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await wait();
    },
  };
}

/**
 * A line-oriented raw SMTP client: `send()` writes bytes, `reply()` reads
 * one complete (possibly multi-line) reply.
 */
export class RawSmtp implements AsyncDisposable {
  #sock: net.Socket;
  #buf = "";
  #waiters: (() => void)[] = [];
  closed = false;

  private constructor(sock: net.Socket) {
    this.#sock = sock;
    sock.setNoDelay(true);
    sock.on("data", (d: Buffer) => {
      this.#buf += d.toString("latin1");
      this.#wake();
    });
    sock.on("close", () => {
      this.closed = true;
      this.#wake();
    });
    sock.on("error", () => {});
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Connect to `127.0.0.1:port` (optionally from `localAddress`). */
  static connect(port: number, localAddress?: string): Promise<RawSmtp> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: "127.0.0.1", port, localAddress });
      sock.once("connect", () => resolve(new RawSmtp(sock)));
      sock.once("error", reject);
    });
  }

  /** Write raw text (no CRLF added). */
  send(text: string | Uint8Array): void {
    this.#sock.write(text);
  }

  /** Next complete reply as its raw lines joined with `\n` (no CRLF), or null on close. */
  async reply(timeoutMs = 10_000): Promise<string | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\r?\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(this.#buf);
      if (m) {
        this.#buf = this.#buf.slice(m[0].length);
        return m[0].replace(/\r?\n$/, "").replace(/\r\n/g, "\n");
      }
      if (this.closed) return null;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`no reply within ${timeoutMs} ms; buffered ${JSON.stringify(this.#buf)}`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        timer = setTimeout(r, left);
      });
      clearTimeout(timer);
    }
  }

  /** Send a line (CRLF added) and read the reply. */
  async cmd(line: string): Promise<string | null> {
    this.send(line + "\r\n");
    return await this.reply();
  }

  /** Resolve once the server closed the connection (bounded). */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.closed;
  }

  /** Close the socket. */
  close(): void {
    this.#sock.destroy();
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/** All records in the finished (read-only) zstd segments of `logDir`, in file order. */
export function readLogRecords(logDir: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  let names: string[] = [];
  try {
    names = [...Deno.readDirSync(logDir)].filter((e) => e.isFile).map((e) => e.name).sort();
  } catch {
    return out;
  }
  for (const n of names) {
    const text = new TextDecoder().decode(zstdDecompressSync(Deno.readFileSync(`${logDir}/${n}`)));
    for (const line of text.split("\n")) if (line !== "") out.push(JSON.parse(line));
  }
  return out;
}

/** The spool file path of `id` under a LocalDisk spool directory. */
export function spoolPath(spoolDir: string, id: string): string {
  return `${spoolDir}/data/${id.slice(0, 2)}/${id.slice(2, 4)}/${id.slice(4, 6)}/${
    id.slice(6, 8)
  }/${id.slice(8)}`;
}

/** Read a spooled record, or null when absent. */
export function readSpool(spoolDir: string, id: string): Uint8Array | null {
  try {
    return Deno.readFileSync(spoolPath(spoolDir, id));
  } catch {
    return null;
  }
}

/**
 * The records of `ids` in a spool of either kind, read through the spool
 * itself (kumo must not be running on it). Missing ids are left out.
 */
export async function readSpoolRecords(
  spoolDir: string,
  kind: SpoolKind,
  ids: readonly string[],
): Promise<Map<string, Uint8Array>> {
  const spool = await openSpool({ name: "test", path: spoolDir, kind });
  const out = new Map<string, Uint8Array>();
  try {
    for (const id of ids) {
      const bytes = await spool.load(id);
      if (bytes !== null) out.set(id, bytes);
    }
  } finally {
    await spool.close();
  }
  return out;
}

/** Run a command to completion; returns exit code and output. */
export async function run(
  cmd: string,
  args: string[],
  timeoutMs = 20_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Ids from a `250 OK ids=a b c` reply. */
export function idsOf(reply: string | null): string[] {
  const m = /^250 (?:OK|PARTIAL) ids=(.*)$/.exec(reply ?? "");
  if (!m) throw new Error(`not an acceptance: ${reply}`);
  return m[1].split(" ");
}
