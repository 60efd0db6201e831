/**
 * The config monitor: every 10 s, hash the files matching the config-monitor
 * globs and bump the config epoch when anything changed (cli.md §3).
 *
 * Place on the path: policy. An epoch bump retires pooled Lua contexts, so
 * edited policy files, TOML helpers and data take effect without a restart.
 * Default globs are upstream's (`/opt/kumomta/etc/**\/*.{lua,json,toml,yaml}`)
 * plus the same patterns directly in the policy file's own directory, so a policy
 * kept elsewhere is watched too.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { diag } from "../log/diag.ts";

/** Converts a glob (`*`, `**`, `?`, `{a,b}`) into an anchored RegExp. */
export function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*") {
      if (glob[i + 1] === "*") {
        i++;
        if (glob[i + 1] === "/") {
          i++;
          re += "(?:.*/)?";
        } else re += ".*";
      } else re += "[^/]*";
    } else if (c === "?") re += "[^/]";
    else if (c === "{") {
      const end = glob.indexOf("}", i);
      const alts = glob.slice(i + 1, end).split(",").map((a) =>
        a.replace(/[.+^$()|[\]\\]/g, "\\$&")
      );
      re += `(?:${alts.join("|")})`;
      i = end;
    } else re += c.replace(/[.+^$()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** The directory part of a glob before its first wildcard. */
export function globBase(glob: string): string {
  const i = glob.search(/[*?{[]/);
  const prefix = i < 0 ? glob : glob.slice(0, i);
  const slash = prefix.lastIndexOf("/");
  return slash <= 0 ? "/" : prefix.slice(0, slash);
}

function walk(dir: string, out: string[], limit: number): void {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return;
  }
  for (const e of entries) {
    if (out.length >= limit) return;
    const p = `${dir === "/" ? "" : dir}/${e.name}`;
    if (e.isDirectory) walk(p, out, limit);
    else if (e.isFile) out.push(p);
  }
}

/** Files matching any of the globs, sorted (at most 10,000). */
export function evalGlobs(globs: readonly string[]): string[] {
  const found = new Set<string>();
  for (const g of globs) {
    const re = globToRegExp(g);
    const files: string[] = [];
    walk(globBase(g), files, 10_000);
    for (const f of files) if (re.test(f)) found.add(f);
  }
  return [...found].sort();
}

/** SHA-256 over path + contents of every matching file. */
export function hashGlobs(globs: readonly string[]): string {
  const h = createHash("sha256");
  for (const f of evalGlobs(globs)) {
    h.update(f);
    try {
      h.update(Deno.readFileSync(f));
    } catch {
      h.update("(unreadable)");
    }
  }
  return h.digest("hex");
}

/** Starts the monitor; returns a function that stops it. */
export function startConfigMonitor(
  globs: () => readonly string[],
  bump: () => void,
  intervalMs = 10_000,
): () => void {
  let last = hashGlobs(globs());
  const timer = setInterval(() => {
    const now = hashGlobs(globs());
    if (now !== last) {
      last = now;
      diag.info("kumod::config", "configuration files changed: bumping the config epoch");
      bump();
    }
  }, intervalMs);
  return () => clearInterval(timer);
}
