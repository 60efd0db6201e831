/**
 * Test helper: verifies DKIM signatures with an implementation independent of
 * the signer — Debian's `python3-dkim` (dkimpy), through
 * `tests/support/dkim_verify.py`. Key records come from the caller (no DNS).
 * Used by the DKIM scenario tests only; never by the program.
 *
 * Fails loudly (never skips) when no Python with the `dkim` module exists:
 * `.ci/run` installs `python3-dkim`.
 */

const SCRIPT = new URL("./dkim_verify.py", import.meta.url).pathname;

// Debian's package installs into the system Python; a pyenv/venv `python3`
// earlier on PATH may not see it, so the system interpreter is tried first.
const CANDIDATES = ["/usr/bin/python3", "python3"];

let python: Promise<string> | undefined;

async function findPython(): Promise<string> {
  for (const cmd of CANDIDATES) {
    try {
      const out = await new Deno.Command(cmd, {
        args: ["-c", "import dkim"],
        stdout: "null",
        stderr: "null",
      }).output();
      if (out.success) return cmd;
    } catch {
      // not installed: try the next candidate
    }
  }
  throw new Error(
    `Cannot verify DKIM independently: no Python with the "dkim" module ` +
      `(tried ${CANDIDATES.join(", ")}): install Debian's python3-dkim ` +
      `(apt-get install -y python3-dkim; .ci/run does this)`,
  );
}

/**
 * Verifies every DKIM-Signature of `message` with dkimpy and returns
 * `"<d=>:pass"` / `"<d=>:fail"` per signature, sorted.
 *
 * @example
 * ```ts
 * const res = await dkimpyVerify(raw, { "s1._domainkey.shop.test": "v=DKIM1; k=rsa; p=..." });
 * ```
 */
export async function dkimpyVerify(
  message: Uint8Array,
  records: Record<string, string>,
): Promise<string[]> {
  python ??= findPython();
  const cmd = await python;
  const file = await Deno.makeTempFile({ prefix: "kumo-dkimpy-", suffix: ".eml" });
  try {
    await Deno.writeFile(file, message);
    const out = await new Deno.Command(cmd, {
      args: [SCRIPT, file, JSON.stringify(records)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    if (!out.success) throw new Error(`Cannot run dkimpy verifier: exit ${out.code}: ${stderr}`);
    return (JSON.parse(new TextDecoder().decode(out.stdout)) as string[]).sort();
  } finally {
    await Deno.remove(file);
  }
}
