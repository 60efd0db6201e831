/**
 * The `kumo` command line: flags, usage errors, --validate exit codes and
 * the policy error format (cli.md §1–§2), run as a real process.
 */
import assert from "node:assert/strict";

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

Deno.test("KUMOD_LOG with a bad level is refused", async () => {
  const p = await policy("local kumo = require 'kumo'\n");
  const r = await kumo(["--validate", "--policy", p], { KUMOD_LOG: "kumod=loud" });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown level "loud"/);
});

Deno.test("the compiled binary behaves like deno run (skipped without a denort)", async (t) => {
  const denort = Deno.env.get("DENORT_BIN");
  if (!denort) {
    console.log("SKIPPED: no DENORT_BIN set; `deno compile` needs a local denort (see README)");
    await t.step({ name: "compile (no denort)", ignore: true, fn: () => {} });
    return;
  }
  const out = `${await Deno.makeTempDir()}/kumo`;
  const c = await new Deno.Command(Deno.execPath(), {
    args: ["compile", "-A", "--include", "policy-extras", "--output", out, "mod.ts"],
    cwd: ROOT,
    env: { DENORT_BIN: denort },
  }).output();
  assert.equal(c.code, 0);
  const v = await new Deno.Command(out, { args: ["--version"], stdout: "piped" }).output();
  assert.equal(v.code, 0);
});
