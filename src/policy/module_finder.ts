/**
 * Finds Lua modules for `require`: on disk through `package.path`, and the
 * `policy-extras.*` helpers shipped with the program.
 *
 * Place on the path: policy. wasmoon's own `io`/`require` only see an
 * in-memory file system, so the prelude installs a searcher that calls
 * {@linkcode findModule}. Upstream installs the helpers under
 * `/opt/kumomta/share/policy-extras/`; we serve the bundled copy whenever
 * that directory does not hold the file, so `require 'policy-extras.queue'`
 * works on a bare machine and inside the compiled binary.
 *
 * @module
 */

/** Directory holding the bundled `policy-extras/*.lua` files. */
export const BUNDLED_EXTRAS_DIR = new URL("../../policy-extras/", import.meta.url);

function tryRead(path: string | URL): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Looks `name` up along `packagePath` (`;`-separated templates with `?`);
 * the first template naming a readable file wins. Returns [path, source]
 * when found, else [undefined, explanation] in Lua 5.4's searcher format
 * (`no file '...'` lines joined by `"\n\t"`, no leading separator:
 * `require` adds it).
 *
 * @example
 * ```ts
 * const [path, source] = findModule("lib.helper", "/etc/policy/?.lua;/etc/policy/?/init.lua");
 * ```
 */
export function findModule(name: string, packagePath: string): [string | undefined, string] {
  const rel = name.replaceAll(".", "/");
  const tried: string[] = [];
  for (const template of packagePath.split(";")) {
    if (!template) continue;
    const path = template.replaceAll("?", rel);
    const src = tryRead(path);
    if (src !== undefined) return [path, src];
    tried.push(`no file '${path}'`);
  }
  if (name.startsWith("policy-extras.")) {
    const file = name.slice("policy-extras.".length).replaceAll(".", "/") + ".lua";
    const url = new URL(file, BUNDLED_EXTRAS_DIR);
    const src = tryRead(url);
    if (src !== undefined) return [`/opt/kumomta/share/policy-extras/${file}`, src];
    tried.push(`no bundled file 'policy-extras/${file}'`);
  }
  return [undefined, tried.join("\n\t")];
}
