/**
 * A small flag reader for kcli subcommands: `--name VALUE`, `--name=VALUE`,
 * boolean switches, repeatable flags and positionals, with clap-like usage
 * errors (exit 2).
 *
 * Place: the admin client's front door, outside the mail's path.
 *
 * @module
 */

/** A command-line usage error (kcli exits 2). */
export class KcliUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KcliUsageError";
  }
}

/** What a subcommand accepts. */
export interface FlagSpec {
  /** Flags that take a value (without `--`). */
  values?: readonly string[];
  /** Flags that may repeat (also listed in `values`). */
  repeat?: readonly string[];
  /** Switches. */
  bools?: readonly string[];
  /** Positional argument names, in order (all required). */
  positionals?: readonly string[];
}

/** Parsed flags. */
export interface Flags {
  values: Map<string, string[]>;
  bools: Set<string>;
  positionals: string[];
}

/**
 * Parse `args` against `spec`.
 *
 * @throws {KcliUsageError} for an unknown flag, a missing value or a wrong
 * number of positionals
 * @example
 * ```ts
 * const f = parseFlags(["--reason", "x", "--json"], { values: ["reason"], bools: ["json"] });
 * f.values.get("reason"); // ["x"]
 * ```
 */
export function parseFlags(args: readonly string[], spec: FlagSpec): Flags {
  const out: Flags = { values: new Map(), bools: new Set(), positionals: [] };
  const values = spec.values ?? [];
  const bools = spec.bools ?? [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      out.positionals.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith("--") || a === "--") {
      out.positionals.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
    if (bools.includes(name) && eq < 0) {
      out.bools.add(name);
      continue;
    }
    if (!values.includes(name)) {
      throw new KcliUsageError(`unexpected argument '${a}' found`);
    }
    let v: string;
    if (eq >= 0) v = a.slice(eq + 1);
    else {
      if (i + 1 >= args.length) {
        throw new KcliUsageError(`a value is required for '--${name}' but none was supplied`);
      }
      v = args[++i];
    }
    const list = out.values.get(name);
    if (list && !(spec.repeat ?? []).includes(name)) {
      throw new KcliUsageError(`the argument '--${name}' cannot be used multiple times`);
    }
    if (list) list.push(v);
    else out.values.set(name, [v]);
  }
  const want = spec.positionals ?? [];
  if (out.positionals.length < want.length) {
    throw new KcliUsageError(
      `the following required arguments were not provided: <${
        want[out.positionals.length].toUpperCase()
      }>`,
    );
  }
  if (out.positionals.length > want.length) {
    throw new KcliUsageError(`unexpected argument '${out.positionals[want.length]}' found`);
  }
  return out;
}

/** The single value of `name`, or undefined. */
export function one(f: Flags, name: string): string | undefined {
  return f.values.get(name)?.[0];
}

/**
 * The single value of a required flag.
 *
 * @throws {KcliUsageError} when absent
 */
export function required(f: Flags, name: string): string {
  const v = one(f, name);
  if (v === undefined) {
    throw new KcliUsageError(
      `the following required arguments were not provided: --${name} <${name.toUpperCase()}>`,
    );
  }
  return v;
}
