/**
 * The `kumo` command line: flags, usage errors, --validate exit codes and
 * the policy error format (cli.md §1–§2), run as a real process.
 */
import assert from "node:assert/strict";
import { basePolicy, RawSmtp, startKumo } from "./support/kumo_process.ts";
import { startDnsServer } from "./support/dns_server.ts";

const ROOT = new URL("..", import.meta.url).pathname;

async function kumo(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}mod.ts`, ...args],
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function policy(text: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kumo-cli-" });
  await Deno.writeTextFile(`${dir}/init.lua`, text);
  return `${dir}/init.lua`;
}

Deno.test("--help and --version exit 0", async () => {
  const h = await kumo(["--help"]);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /--policy <PATH>/);
  assert.match(h.stdout, /\/opt\/kumomta\/etc\/policy\/init\.lua/);
  const v = await kumo(["--version"]);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^kumo \d+\.\d+\.\d+/);
});

Deno.test("usage errors exit 2 with the usage text", async () => {
  const r = await kumo(["--bogus"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /bogus/);
  assert.match(r.stderr, /Usage: kumo/);
  const m = await kumo(["--policy"]);
  assert.equal(m.code, 2);
  const f = await kumo(["--diag-format", "xml"]);
  assert.equal(f.code, 2);
});

Deno.test("a policy syntax error exits 1 naming file and line", async () => {
  const p = await policy(
    "local kumo = require 'kumo'\nkumo.on('init', function()\n  local x = \nend)\n",
  );
  const r = await kumo(["--policy", p]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    new RegExp(
      `Error: Error evaluating policy file "${p.replaceAll(".", "\\.")}": .*init\\.lua:4:`,
    ),
  );
});

Deno.test("a missing policy file exits 1", async () => {
  const r = await kumo(["--policy", "/nonexistent/init.lua"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Error: Error evaluating policy file "\/nonexistent\/init\.lua"/);
});

Deno.test("--validate: exit 0 for a valid policy, without starting anything", async () => {
  const dir = await Deno.makeTempDir();
  const p = await policy(`
local kumo = require 'kumo'
kumo.on('init', function()
  assert(_VALIDATING_CONFIG)
  kumo.start_esmtp_listener { listen = '127.0.0.1:1' }
  kumo.define_spool { name = 'data', path = '${dir}/data' }
  kumo.define_spool { name = 'meta', path = '${dir}/meta' }
end)
`);
  const r = await kumo(["--validate", "--policy", p]);
  assert.equal(r.code, 0, r.stderr);
  // nothing was created: validation has no side effects
  assert.deepEqual([...Deno.readDirSync(dir)], []);
});

Deno.test("--validate: exit 1 when validate_config flags failure or init errors", async () => {
  const bad = await policy(`
local kumo = require 'kumo'
kumo.on('validate_config', function() kumo.validation_failed() end)
`);
  const r = await kumo(["--validate", "--policy", bad]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Validation failed/);
  const badKey = await policy(`
local kumo = require 'kumo'
kumo.on('init', function()
  kumo.start_esmtp_listener { listen = '127.0.0.1:1', relay_hostz = {} }
end)
`);
  const r2 = await kumo(["--validate", "--policy", badKey]);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /init\.lua:4: .*unknown field `relay_hostz`/);
});

Deno.test("init without spools fails with the upstream message", async () => {
  const p = await policy("local kumo = require 'kumo'\nkumo.on('init', function() end)\n");
  const r = await kumo(["--policy", p]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Error: Initialization raised an error: No spools have been defined/);
  assert.match(r.stderr, /initialization complete/);
});

Deno.test("--script runs the main event with the script arguments", async () => {
  const p = await policy(`
local kumo = require 'kumo'
kumo.on('main', function(a, b)
  if a ~= 'one' or b ~= 'two' then error('bad args: ' .. tostring(a) .. ' ' .. tostring(b)) end
end)
`);
  const r = await kumo(["--script", "--policy", p, "--", "one", "two"]);
  assert.equal(r.code, 0, r.stderr);
});

Deno.test("--user must name the current user", async () => {
  const me = new TextDecoder().decode(
    (await new Deno.Command("id", { args: ["-un"], stdout: "piped" }).output()).stdout,
  ).trim();
  const p = await policy("local kumo = require 'kumo'\n");
  const ok = await kumo(["--validate", "--user", me, "--policy", p]);
  assert.equal(ok.code, 0, ok.stderr);
  const bad = await kumo(["--validate", "--user", "no-such-user-kumo", "--policy", p]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /no such user/);
});

Deno.test("--user nobody is refused before the policy is loaded", async () => {
  // a broken policy: the --user check (cli.md §2 step 2) must come first
  const p = await policy("local x = = 1\n");
  const r = await kumo(["--user", "nobody", "--policy", p]);
  assert.equal(r.code, 1);
  if (Deno.uid() === 0) {
    // kumod would switch to nobody; kumo-edge cannot drop privileges, so it refuses
    assert.match(
      r.stderr,
      /Error: Cannot run as user "nobody": kumo-edge cannot drop root privileges; start it as "nobody"/,
    );
  } else {
    assert.match(r.stderr, /Error: Cannot run as user "nobody": the current uid is \d+, not \d+/);
  }
  assert.doesNotMatch(r.stderr, /Error evaluating policy file/);
});

Deno.test("as root without --user: runs, with a warning", async (t) => {
  if (Deno.uid() !== 0) {
    console.log("SKIPPED: not running as root");
    await t.step({ name: "root without --user", ignore: true, fn: () => {} });
    return;
  }
  const p = await policy("local kumo = require 'kumo'\n");
  const r = await kumo(["--validate", "--policy", p], { KUMOD_LOG: "warn" });
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr,
    /WARN kumod: running as root without --user: kumo-edge cannot drop privileges/,
  );
  const root = await kumo(["--validate", "--user", "root", "--policy", p], { KUMOD_LOG: "warn" });
  assert.equal(root.code, 0, root.stderr);
  assert.doesNotMatch(root.stderr, /running as root/);
});

Deno.test("KUMOD_LOG with a bad level is refused", async () => {
  const p = await policy("local kumo = require 'kumo'\n");
  const r = await kumo(["--validate", "--policy", p], { KUMOD_LOG: "kumod=loud" });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown level "loud"/);
});

Deno.test("KUMOD_LOG=kumod=debug shows kumod's debug lines", async () => {
  const p = await policy("local kumo = require 'kumo'\n");
  const quiet = await kumo(["--validate", "--policy", p]);
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.doesNotMatch(quiet.stderr, /DEBUG/);
  const r = await kumo(["--validate", "--policy", p], { KUMOD_LOG: "kumod=debug" });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /DEBUG kumod::policy: new Lua context: ran .*init\.lua/);
});

Deno.test("KUMOD_LOG=warn hides `initialization complete`", async () => {
  await using dns = await startDnsServer();
  const dir = await Deno.makeTempDir({ prefix: "kumo-cli-log-" });
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  await Deno.writeTextFile(
    `${dir}/init.lua`,
    basePolicy(dir, "", `kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }`)
      .replace("127.0.0.1:0", `127.0.0.1:${port}`),
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}mod.ts`, "--policy", `${dir}/init.lua`],
    cwd: ROOT,
    env: { KUMOD_LOG: "warn" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  try {
    // up when the listener greets with 220, i.e. the spool is open (bounded: 20 s)
    let banner: string | null = null;
    for (let i = 0; i < 200 && !banner?.startsWith("220 "); i++) {
      try {
        await using c = await RawSmtp.connect(port);
        banner = await c.reply(2000); // 421 … waiting for spool startup: try again
      } catch {
        // not listening yet
      }
      if (!banner?.startsWith("220 ")) await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(banner ?? "", /^220 /);
  } finally {
    child.kill("SIGTERM");
  }
  const status = await child.status;
  const text = await stderr;
  assert.equal(status.code, 0, text);
  assert.doesNotMatch(text, /initialization complete|SIGTERM received/);
  assert.doesNotMatch(text, / INFO /);
});

Deno.test("KUMO_AVAILABLE_PARALLELISM overrides kumo.available_parallelism()", async () => {
  const p = await policy(`
local kumo = require 'kumo'
kumo.on('main', function(want)
  local n = kumo.available_parallelism()
  if tostring(n) ~= want then error('available_parallelism() = ' .. tostring(n)) end
end)
`);
  const r = await kumo(["--script", "--policy", p, "--", "3"], { KUMO_AVAILABLE_PARALLELISM: "3" });
  assert.equal(r.code, 0, r.stderr);
  const cpus = String(navigator.hardwareConcurrency);
  const d = await kumo(["--script", "--policy", p, "--", cpus]);
  assert.equal(d.code, 0, d.stderr);
  const bad = await kumo(["--script", "--policy", p, "--", "3"], {
    KUMO_AVAILABLE_PARALLELISM: "lots",
  });
  assert.equal(bad.code, 1);
  assert.match(
    bad.stderr,
    /init\.lua:4: .*Cannot read KUMO_AVAILABLE_PARALLELISM "lots": expected a positive integer/,
  );
});

for (const sig of ["SIGINT", "SIGHUP"] as const) {
  Deno.test(`${sig} shuts down gracefully: exit 0 and the shutdown lines`, async () => {
    await using dns = await startDnsServer();
    const dir = await Deno.makeTempDir({ prefix: "kumo-cli-sig-" });
    await using k = await startKumo(
      dir,
      basePolicy(dir, "", `kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }`),
    );
    const idle = await RawSmtp.connect(k.port);
    assert.equal(await idle.reply(), "220 mx.test KumoMTA");
    assert.equal(await k.stop(sig), 0, k.stderr());
    assert.equal(await idle.reply(), "421 4.3.2 mx.test shutting down");
    idle.close();
    assert.match(k.stderr(), new RegExp(`INFO kumod: ${sig} received: shutting down`));
    assert.match(k.stderr(), /INFO kumod: shutdown complete/);
  });
}

Deno.test("the compiled binary behaves like deno run (skipped without a denort)", async (t) => {
  const denort = Deno.env.get("DENORT_BIN");
  if (!denort) {
    console.log("SKIPPED: no DENORT_BIN set; `deno compile` needs a local denort (see README)");
    await t.step({ name: "compile (no denort)", ignore: true, fn: () => {} });
    return;
  }
  // `deno task compile` builds ./kumo (git-ignored) with policy-extras/ embedded
  const c = await new Deno.Command(Deno.execPath(), {
    args: ["task", "compile"],
    cwd: ROOT,
    env: { DENORT_BIN: denort },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(c.code, 0, new TextDecoder().decode(c.stderr));
  const bin = async (args: string[]) => {
    const out = await new Deno.Command(`${ROOT}kumo`, {
      args,
      cwd: await Deno.makeTempDir(), // not the repository: extras must come from the binary
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  };
  const v = await bin(["--version"]);
  assert.equal(v.code, 0, v.stderr);
  assert.equal(v.stdout, (await kumo(["--version"])).stdout);
  const good = await policy(`
local kumo = require 'kumo'
local utils = require 'policy-extras.policy_utils'
kumo.on('validate_config', function()
  if not utils.equals({ a = { 1, 2 } }, { a = { 1, 2 } }) then kumo.validation_failed() end
end)
`);
  const ok = await bin(["--validate", "--policy", good]);
  assert.equal(ok.code, 0, ok.stderr);
  const bad = await policy("local kumo = require 'kumo'\nrequire 'policy-extras.no_such_helper'\n");
  const r = await bin(["--validate", "--policy", bad]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /init\.lua:2: module 'policy-extras\.no_such_helper' not found/);
});
