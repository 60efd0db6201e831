/**
 * ConfigError: a configuration value that cannot be accepted.
 *
 * Thrown by every parser of operator input (Lua parameter tables, TOML/JSON
 * helper files, duration and rate strings). It carries where the bad value
 * came from so the operator can fix it: file, line and key, when known.
 *
 * @module
 */

/** Where a bad configuration value was found. */
export interface ConfigErrorOrigin {
  /** File the value came from (policy file, TOML file). */
  file?: string;
  /** 1-based line in that file. */
  line?: number;
  /** Dotted key path of the value, e.g. `source.ip-1.source_address`. */
  key?: string;
}

/**
 * A configuration value was rejected.
 *
 * @example
 * ```ts
 * throw new ConfigError("invalid duration \"10 parsecs\": unknown unit", { key: "retry_interval" });
 * ```
 */
export class ConfigError extends SyntaxError {
  file?: string;
  line?: number;
  key?: string;
  constructor(message: string, origin: ConfigErrorOrigin = {}) {
    super(message);
    this.name = "ConfigError";
    this.file = origin.file;
    this.line = origin.line;
    this.key = origin.key;
  }
}
