/**
 * kumo.json_* / kumo.toml_* / kumo.serde.*: data formats for policy.
 *
 * Place on the path: policy (host functions). JSON input may carry `//`,
 * `/* *\/` and `#` comments, as upstream allows; JSON `null` becomes nil.
 * Sequence tables encode as arrays, other tables as objects, `{}` as `{}`.
 *
 * @module
 */

import { parse as tomlParse, stringify as tomlStringify } from "smol-toml";
import { parse as yamlParseText, stringify as yamlStringify } from "yaml";
import { ConfigError } from "../../util/config_error.ts";

/** Removes comments outside of strings from JSON text. */
export function stripJsonComments(text: string): string {
  let out = "";
  let i = 0;
  const n = text.length;
  let start = 0;
  while (i < n) {
    const c = text[i];
    if (c === '"') {
      i++;
      while (i < n && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      i++;
      continue;
    }
    if (c === "#" || (c === "/" && text[i + 1] === "/")) {
      out += text.slice(start, i);
      while (i < n && text[i] !== "\n") i++;
      start = i;
      continue;
    }
    if (c === "/" && text[i + 1] === "*") {
      out += text.slice(start, i);
      const end = text.indexOf("*/", i + 2);
      i = end < 0 ? n : end + 2;
      out += " ";
      start = i;
      continue;
    }
    i++;
  }
  return out + text.slice(start);
}

/** Parses JSON with comments; errors name the source. */
export function jsonParse(text: string, origin = "JSON text"): unknown {
  try {
    return JSON.parse(stripJsonComments(text));
  } catch (e) {
    throw new ConfigError(`Cannot parse ${origin}: ${(e as Error).message}`, { file: origin });
  }
}

/** Reads and parses a JSON file. */
export function jsonLoad(path: string): unknown {
  return jsonParse(readText(path), path);
}

/** Parses TOML; the error names the source and line. */
export function tomlParseText(text: string, origin = "TOML text"): unknown {
  try {
    return tomlParse(text);
  } catch (e) {
    const err = e as Error & { line?: number; column?: number };
    const at = err.line ? ` at line ${err.line}, column ${err.column ?? 1}` : "";
    throw new ConfigError(`Cannot parse ${origin}${at}: ${err.message}`, {
      file: origin,
      line: err.line,
    });
  }
}

/** Reads and parses a TOML file. */
export function tomlLoad(path: string): unknown {
  return tomlParseText(readText(path), path);
}

/** TOML text of a value. */
export function tomlEncode(value: unknown): string {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new TypeError("toml_encode: the value must be a table with string keys");
  }
  return tomlStringify(value as Record<string, unknown>);
}

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    throw new ConfigError(`Cannot read "${path}": ${(e as Error).message}`, { file: path });
  }
}

/** JSON for Lua values: compact, or pretty with two-space indent. */
export function jsonEncode(value: unknown, pretty = false): string {
  return JSON.stringify(value ?? null, null, pretty ? 2 : undefined);
}

/** Parses YAML; the error names the source and line. */
export function yamlParse(text: string, origin = "YAML text"): unknown {
  try {
    return yamlParseText(text);
  } catch (e) {
    const err = e as Error & { linePos?: { line: number }[] };
    throw new ConfigError(`Cannot parse ${origin}: ${err.message}`, {
      file: origin,
      line: err.linePos?.[0]?.line,
    });
  }
}

/** Reads and parses a YAML file. */
export function yamlLoad(path: string): unknown {
  return yamlParse(readText(path), path);
}

/** YAML text of a value. */
export function yamlEncode(value: unknown): string {
  return yamlStringify(value ?? null);
}
