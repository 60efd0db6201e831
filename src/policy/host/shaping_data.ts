/**
 * Shaping data: the merged contents of the `policy-extras.shaping` TOML/JSON
 * files (policy-extras.md §4) and the egress-path lookup over them.
 *
 * Place on the path: policy (host functions) → dns. `kumo.shaping.load`
 * builds a {@linkcode ShapingData} once per memoize period (MX roll-up
 * lookups happen here, at load time); the Lua helper then calls
 * {@linkcode ShapingData.lookup} whenever a ready queue asks
 * `get_egress_path_config`. The result is a plain parameter table for
 * `kumo.make_egress_path`; nothing here opens connections or applies
 * automation rules (those need TSA and are only validated).
 *
 * @module
 */

import { parse as tomlParse } from "smol-toml";
import { ConfigError } from "../../util/config_error.ts";
import { parseDuration } from "../../util/duration.ts";
import { parseThrottleSpec } from "../../util/throttle_spec.ts";
import { parseLimitSpec } from "../../util/limit_spec.ts";
import { parseEgressPath } from "../config/egress_path.ts";
import { resolveMailExchanger } from "../../dns/mail_exchanger.ts";
import type { Resolver } from "../../dns/resolver.ts";
import { stripJsonComments } from "./serde.ts";
import { BUNDLED_EXTRAS_DIR } from "../module_finder.ts";

const UPSTREAM_EXTRAS_DIR = "/opt/kumomta/share/policy-extras/";

type Params = Record<string, unknown>;

/** How a class of load problem is reported. */
export type ShapingLevel = "Ignore" | "Warn" | "Error";

/** `ShapingMergeOptions`: how load problems are reported. */
export interface ShapingMergeOptions {
  provider_overlap: ShapingLevel;
  dns_fail: ShapingLevel;
  null_mx: ShapingLevel;
  aliased_site: ShapingLevel;
  remote_load: ShapingLevel;
  local_load: ShapingLevel;
  skip_remote: boolean;
  /** ms */
  http_timeout: number;
}

const LEVEL_KEYS = [
  "provider_overlap",
  "dns_fail",
  "null_mx",
  "aliased_site",
  "remote_load",
  "local_load",
] as const;

/** A validated automation rule (kept for reporting; TSA would execute it). */
export interface AutomationRule {
  regex: string[];
  action: unknown[];
  duration: string | number;
  trigger: unknown;
  match_internal: boolean;
}

interface Block {
  params: Params;
  sources: Map<string, Params>;
  automation: AutomationRule[];
  mxRollup: boolean;
}

type MatchRule = { MXSuffix: string } | { DomainSuffix: string } | { HostName: string };

interface Provider {
  name: string;
  params: Params;
  sources: Map<string, Params>;
  automation: AutomationRule[];
  match: MatchRule[];
}

/** Keys whose values are merged entry by entry instead of replaced. */
const MERGED_MAPS = new Set([
  "additional_connection_limits",
  "additional_message_rate_throttles",
  "additional_source_selection_rates",
]);

const PROVIDER_KEYS = new Set([
  "provider_connection_limit",
  "provider_max_message_rate",
  "provider_source_selection_rate",
]);

function isTable(v: unknown): v is Params {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Overlays `src` onto `dest`, key by key; `additional_*` maps merge per entry. */
function overlay(dest: Params, src: Params): Params {
  for (const [k, v] of Object.entries(src)) {
    if (MERGED_MAPS.has(k) && isTable(v) && isTable(dest[k])) {
      dest[k] = { ...(dest[k] as Params), ...v };
    } else dest[k] = isTable(v) ? { ...v } : v;
  }
  return dest;
}

function levelOf(v: unknown, key: string): ShapingLevel {
  if (v === "Ignore" || v === "Warn" || v === "Error") return v;
  throw new ConfigError(
    `deserialize error: unknown variant \`${v}\`, expected one of \`Ignore\`, \`Warn\`, \`Error\` for \`${key}\``,
    { key },
  );
}

/** Parses `ShapingMergeOptions` (runtime defaults; unknown keys rejected). */
export function parseShapingMergeOptions(input: unknown): ShapingMergeOptions {
  const o: ShapingMergeOptions = {
    provider_overlap: "Ignore",
    dns_fail: "Ignore",
    null_mx: "Ignore",
    aliased_site: "Ignore",
    remote_load: "Ignore",
    local_load: "Error",
    skip_remote: false,
    http_timeout: 5000,
  };
  if (input === undefined || input === null) return o;
  if (!isTable(input)) throw new ConfigError("ShapingMergeOptions: expected a table");
  const known = [...LEVEL_KEYS, "skip_remote", "http_timeout"];
  for (const [k, v] of Object.entries(input)) {
    if ((LEVEL_KEYS as readonly string[]).includes(k)) {
      o[k as typeof LEVEL_KEYS[number]] = levelOf(v, k);
    } else if (k === "skip_remote") o.skip_remote = Boolean(v);
    else if (k === "http_timeout") o.http_timeout = parseDuration(v, k);
    else {
      throw new ConfigError(
        `deserialize error: unknown field \`${k}\`, expected one of ${
          known.map((x) => `\`${x}\``).join(", ")
        }`,
        { key: k },
      );
    }
  }
  return o;
}

// ---- file parsing ----

interface RawBlock {
  params: Params;
  sources: Map<string, Params>;
  automation: AutomationRule[];
  mxRollup?: boolean;
  replaceBase: boolean;
}

interface RawProvider extends RawBlock {
  match: MatchRule[];
}

interface ShapingFile {
  domains: Map<string, RawBlock>;
  providers: Map<string, RawProvider>;
}

function checkPath(params: Params, what: string): void {
  try {
    parseEgressPath(params);
  } catch (e) {
    throw new ConfigError(
      `interpreting ${what} params ${JSON.stringify(params)} as EgressPathConfig: ${
        (e as Error).message
      }`,
    );
  }
}

/** Compiles a fancy-regex pattern as far as JS allows (leading inline flags). */
function checkRegex(pattern: string, where: string): void {
  let p = pattern;
  let flags = "";
  const m = /^\(\?([imsx]+)\)/.exec(p);
  if (m) {
    p = p.slice(m[0].length);
    flags = [...new Set(m[1].replace("x", ""))].join("");
  }
  try {
    new RegExp(p, flags);
  } catch (e) {
    throw new ConfigError(`${where}: invalid regex "${pattern}": ${(e as Error).message}`);
  }
}

const SIMPLE_ACTIONS = new Set([
  "Suspend",
  "SuspendTenant",
  "SuspendCampaign",
  "Bounce",
  "BounceTenant",
  "BounceCampaign",
]);

function checkAction(a: unknown, where: string): void {
  if (typeof a === "string") {
    if (SIMPLE_ACTIONS.has(a)) return;
    throw new ConfigError(
      `${where}: unknown action "${a}", expected one of ${
        [...SIMPLE_ACTIONS, "SetConfig", "SetDomainConfig"].join(", ")
      }`,
    );
  }
  if (isTable(a)) {
    const keys = Object.keys(a);
    const k = keys[0];
    if (keys.length === 1 && (k === "SetConfig" || k === "SetDomainConfig")) {
      const sc = a[k];
      if (!isTable(sc) || typeof sc.name !== "string" || !("value" in sc)) {
        throw new ConfigError(`${where}: ${k} needs { name = "<key>", value = <value> }`);
      }
      checkPath({ [sc.name]: sc.value }, `${where} ${k}`);
      return;
    }
  }
  throw new ConfigError(`${where}: invalid action ${JSON.stringify(a)}`);
}

function parseRule(input: unknown, where: string): AutomationRule {
  if (!isTable(input)) throw new ConfigError(`${where}: an automation rule must be a table`);
  const allowed = new Set(["regex", "action", "duration", "trigger", "match_internal"]);
  for (const k of Object.keys(input)) {
    if (!allowed.has(k)) {
      throw new ConfigError(
        `${where}: unknown field \`${k}\`, expected one of \`regex\`, \`action\`, \`duration\`, \`trigger\`, \`match_internal\``,
      );
    }
  }
  const regex = Array.isArray(input.regex) ? input.regex : [input.regex];
  if (input.regex === undefined || regex.some((r) => typeof r !== "string")) {
    throw new ConfigError(`${where}: \`regex\` must be a string or an array of strings`);
  }
  for (const r of regex) checkRegex(r as string, where);
  if (input.action === undefined) throw new ConfigError(`${where}: missing field \`action\``);
  const action = Array.isArray(input.action) ? input.action : [input.action];
  for (const a of action) checkAction(a, where);
  if (input.duration === undefined) throw new ConfigError(`${where}: missing field \`duration\``);
  try {
    parseDuration(input.duration, "duration");
  } catch (e) {
    throw new ConfigError(`${where}: ${(e as Error).message}`);
  }
  const trigger = input.trigger ?? "Immediate";
  if (trigger !== "Immediate") {
    if (!isTable(trigger) || typeof trigger.Threshold !== "string") {
      throw new ConfigError(
        `${where}: trigger must be "Immediate" or { Threshold = "N/period" }`,
      );
    }
    try {
      parseThrottleSpec(trigger.Threshold, "Threshold");
    } catch (e) {
      throw new ConfigError(`${where}: ${(e as Error).message}`);
    }
  }
  if (input.match_internal !== undefined && typeof input.match_internal !== "boolean") {
    throw new ConfigError(`${where}: match_internal must be a boolean`);
  }
  return {
    regex: regex as string[],
    action,
    duration: input.duration as string,
    trigger,
    match_internal: input.match_internal === true,
  };
}

function parseBlock(name: string, input: unknown, isProvider: true): RawProvider;
function parseBlock(name: string, input: unknown, isProvider: false): RawBlock;
function parseBlock(name: string, input: unknown, isProvider: boolean): RawBlock | RawProvider {
  const what = isProvider ? `provider '${name}'` : `domain '${name}'`;
  if (!isTable(input)) {
    throw new ConfigError(`${what}: expected a table, got ${JSON.stringify(input)}`);
  }
  // Only provider blocks carry a `match` list: a domain block never has one,
  // so merging two domain blocks (aliased MX sites) never touches it.
  const match: MatchRule[] = [];
  const out: RawBlock = {
    params: {},
    sources: new Map(),
    automation: [],
    replaceBase: false,
  };
  for (const [k, v] of Object.entries(input)) {
    if (k === "sources") {
      if (!isTable(v)) throw new ConfigError(`${what}: \`sources\` must be a table`);
      for (const [s, sp] of Object.entries(v)) {
        if (!isTable(sp)) throw new ConfigError(`${what} source '${s}': expected a table`);
        const path: Params = {};
        for (const [pk, pv] of Object.entries(sp)) {
          if (isProvider && PROVIDER_KEYS.has(pk)) {
            checkProviderKey(pk, pv, `${what} source '${s}'`);
          } else path[pk] = pv;
        }
        checkPath(path, `${what} source '${s}'`);
        out.sources.set(s, { ...sp });
      }
    } else if (k === "automation") {
      const list = Array.isArray(v) ? v : [v];
      list.forEach((r, i) => out.automation.push(parseRule(r, `${what} automation[${i}]`)));
    } else if (k === "replace_base") {
      out.replaceBase = v === true;
    } else if (k === "mx_rollup" && !isProvider) {
      if (typeof v !== "boolean") throw new ConfigError(`${what}: mx_rollup must be a boolean`);
      out.mxRollup = v;
    } else if (k === "match" && isProvider) {
      if (!Array.isArray(v)) throw new ConfigError(`${what}: \`match\` must be an array`);
      for (const m of v) {
        const keys = isTable(m) ? Object.keys(m) : [];
        if (
          keys.length !== 1 || !["MXSuffix", "DomainSuffix", "HostName"].includes(keys[0]) ||
          typeof (m as Params)[keys[0]] !== "string"
        ) {
          throw new ConfigError(
            `${what}: invalid match rule ${
              JSON.stringify(m)
            }, expected { MXSuffix = "..." }, { DomainSuffix = "..." } or { HostName = "..." }`,
          );
        }
        match.push(m as MatchRule);
      }
    } else if (
      isProvider && (k === "provider_connection_limit" || k === "provider_max_message_rate")
    ) {
      checkProviderKey(k, v, what);
      out.params[k] = v;
    } else out.params[k] = v;
  }
  const pathParams: Params = {};
  for (const [k, v] of Object.entries(out.params)) if (!PROVIDER_KEYS.has(k)) pathParams[k] = v;
  checkPath(pathParams, what);
  return isProvider ? { ...out, match } : out;
}

function checkProviderKey(k: string, v: unknown, what: string): void {
  try {
    if (k === "provider_connection_limit") parseLimitSpec(v, k);
    else parseThrottleSpec(v, k);
  } catch (e) {
    throw new ConfigError(`${what}: invalid value for \`${k}\`: ${(e as Error).message}`);
  }
}

function parseShapingFile(data: unknown, warn: (m: string) => void): ShapingFile {
  if (!isTable(data)) throw new ConfigError("shaping data must be a table");
  const file: ShapingFile = { domains: new Map(), providers: new Map() };
  for (const [k, v] of Object.entries(data)) {
    if (k === "provider") {
      if (!isTable(v)) throw new ConfigError("`provider` must be a table of provider blocks");
      for (const [name, p] of Object.entries(v)) {
        file.providers.set(name, parseBlock(name, p, true));
      }
      continue;
    }
    if (k !== "default" && !k.includes(".") && !k.startsWith("[")) {
      warn(
        `domain '${k}' has a single label: quote dotted domain names (["${k}.example"]), ` +
          `otherwise TOML nests them as tables`,
      );
    }
    file.domains.set(k, parseBlock(k, v, false));
  }
  return file;
}

// ---- the loaded data ----

/** The merged shaping data of one load, with the egress-path lookup. */
export class ShapingData {
  /** Problems reported at `Error` level (the load went on without them). */
  readonly errors: string[] = [];
  /** Problems reported at `Warn` level. */
  readonly warnings: string[] = [];
  /** The `default` block, if any file had one. */
  defaults?: Block;
  /** `mx_rollup = true` blocks by MX site name. */
  readonly bySite = new Map<string, Block>();
  /** `mx_rollup = false` blocks by routing domain. */
  readonly byDomain = new Map<string, Block>();
  /** Providers in file order. */
  readonly providers: Provider[] = [];
  #resolver: Resolver;

  constructor(resolver: Resolver) {
    this.#resolver = resolver;
  }

  /** Egress source names mentioned by any `sources` block. */
  referencedSources(): string[] {
    const out = new Set<string>();
    const add = (b: { sources: Map<string, Params> }) => {
      for (const s of b.sources.keys()) out.add(s);
    };
    if (this.defaults) add(this.defaults);
    for (const b of this.bySite.values()) add(b);
    for (const b of this.byDomain.values()) add(b);
    for (const p of this.providers) add(p);
    return [...out].sort();
  }

  /** Names of providers matching `domain` (DomainSuffix, or every MX host). */
  async matchingProviders(domain: string): Promise<Provider[]> {
    if (this.providers.length === 0 || !isDnsName(domain)) return [];
    let hosts: string[] | undefined;
    const out: Provider[] = [];
    for (const p of this.providers) {
      if (p.match.some((m) => "DomainSuffix" in m && domain.endsWith(m.DomainSuffix))) {
        out.push(p);
        continue;
      }
      const mxRules = p.match.filter((m) => !("DomainSuffix" in m));
      if (mxRules.length === 0) continue;
      if (hosts === undefined) {
        try {
          const mx = await resolveMailExchanger(domain, this.#resolver);
          hosts = mx.hosts.map((h) => h.replace(/\.$/, "").toLowerCase());
        } catch {
          hosts = [];
        }
      }
      if (hosts.length === 0) continue;
      const all = hosts.every((h) =>
        mxRules.some((m) =>
          "MXSuffix" in m ? h.endsWith(m.MXSuffix.toLowerCase()) : h === (m as { HostName: string })
            .HostName.replace(/\.$/, "").toLowerCase()
        )
      );
      if (all) out.push(p);
    }
    return out;
  }

  /**
   * The merged egress-path parameters for (routing domain, source, site),
   * in the precedence of policy-extras.md §4: default, providers, provider
   * sources, site, domain, site source, domain source.
   */
  async lookup(routingDomain: string, source: string, site: string): Promise<Params> {
    const out: Params = {};
    if (this.defaults) overlay(out, this.defaults.params);
    const providers = await this.matchingProviders(routingDomain);
    for (const p of providers) {
      const base: Params = {};
      for (const [k, v] of Object.entries(p.params)) if (!PROVIDER_KEYS.has(k)) base[k] = v;
      overlay(out, base);
      overlay(out, implied(p, source, p.params));
    }
    for (const p of providers) {
      const sp = p.sources.get(source);
      if (!sp) continue;
      const base: Params = {};
      for (const [k, v] of Object.entries(sp)) if (!PROVIDER_KEYS.has(k)) base[k] = v;
      overlay(out, base);
      overlay(out, implied(p, source, { ...p.params, ...sp }));
    }
    const siteBlock = this.bySite.get(site);
    const domainBlock = this.byDomain.get(routingDomain);
    if (siteBlock) overlay(out, siteBlock.params);
    if (domainBlock) overlay(out, domainBlock.params);
    const ss = siteBlock?.sources.get(source);
    if (ss) overlay(out, ss);
    const ds = domainBlock?.sources.get(source);
    if (ds) overlay(out, ds);
    return out;
  }
}

function implied(p: Provider, source: string, params: Params): Params {
  const out: Params = { provider_name: p.name };
  const prefix = `shaping-provider-${p.name}-${source}`;
  if (params.provider_connection_limit !== undefined) {
    out.additional_connection_limits = {
      [`${prefix}-limit`]: params.provider_connection_limit,
    };
  }
  if (params.provider_max_message_rate !== undefined) {
    out.additional_message_rate_throttles = {
      [`${prefix}-rate`]: params.provider_max_message_rate,
    };
  }
  if (params.provider_source_selection_rate !== undefined) {
    out.additional_source_selection_rates = {
      [`${prefix}-selection-rate`]: params.provider_source_selection_rate,
    };
  }
  return out;
}

function isDnsName(d: string): boolean {
  return /^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/
    .test(d);
}

/**
 * Merges `src` into a copy-on-write `dest` (the overlay rule; `replace_base`
 * starts over from `src`). Never mutates `src`.
 */
function mergeBlock(dest: RawBlock | undefined, src: RawBlock): RawBlock {
  if (!dest || src.replaceBase) {
    return {
      params: overlay({}, src.params),
      sources: new Map([...src.sources].map(([k, v]) => [k, overlay({}, v)])),
      automation: [...src.automation],
      mxRollup: src.mxRollup,
      replaceBase: false,
    };
  }
  overlay(dest.params, src.params);
  for (const [s, p] of src.sources) dest.sources.set(s, overlay(dest.sources.get(s) ?? {}, p));
  dest.automation.push(...src.automation);
  if (src.mxRollup !== undefined) dest.mxRollup = src.mxRollup;
  return dest;
}

/** Provider blocks with the same name: params overlaid, `match` and `automation` appended. */
function mergeProvider(dest: RawProvider | undefined, src: RawProvider): RawProvider {
  const match = dest && !src.replaceBase ? [...dest.match, ...src.match] : [...src.match];
  return { ...mergeBlock(dest, src), match };
}

/**
 * Parses file text by extension: `.toml`, `.json`, otherwise TOML then JSON.
 * A syntax error names the file and, for TOML, the line and column, in the
 * words of `kumo.toml_load` (`Cannot parse shaping file "f" at line 3, column 1: ...`).
 */
export function parseShapingText(text: string, name: string): unknown {
  const path = name.replace(/[?#].*$/, "");
  const toml = () => {
    try {
      return tomlParse(text);
    } catch (e) {
      const err = e as Error & { line?: number; column?: number };
      const at = err.line ? ` at line ${err.line}, column ${err.column ?? 1}` : "";
      throw new ConfigError(`Cannot parse shaping file "${name}"${at}: ${err.message}`, {
        file: name,
        line: err.line,
      });
    }
  };
  const json = () => {
    try {
      return JSON.parse(stripJsonComments(text));
    } catch (e) {
      throw new ConfigError(`Cannot parse shaping file "${name}": ${(e as Error).message}`, {
        file: name,
      });
    }
  };
  if (path.endsWith(".toml")) return toml();
  if (path.endsWith(".json")) return json();
  try {
    return toml();
  } catch (tomlError) {
    try {
      return json();
    } catch {
      throw tomlError;
    }
  }
}

async function readSource(
  name: string,
  opts: ShapingMergeOptions,
  report: (level: ShapingLevel, msg: string) => void,
): Promise<string | undefined> {
  if (/^https?:\/\//.test(name)) {
    if (opts.skip_remote) return undefined;
    try {
      const res = await fetch(name, { signal: AbortSignal.timeout(opts.http_timeout) });
      const text = await res.text();
      if (!res.ok) throw new Error(`HTTP status ${res.status}`);
      return text;
    } catch (e) {
      report(opts.remote_load, `Cannot load shaping data from "${name}": ${(e as Error).message}`);
      return undefined;
    }
  }
  try {
    return await Deno.readTextFile(name);
  } catch (e) {
    // The default file's upstream location falls back to the bundled copy.
    if (name.startsWith(UPSTREAM_EXTRAS_DIR)) {
      const bundled = new URL(name.slice(UPSTREAM_EXTRAS_DIR.length), BUNDLED_EXTRAS_DIR);
      const text = await Deno.readTextFile(bundled).catch(() => undefined);
      if (text !== undefined) return text;
    }
    report(opts.local_load, `Cannot read shaping file "${name}": ${(e as Error).message}`);
    return undefined;
  }
}

/**
 * Loads and merges shaping files in order (`kumo.shaping.load`). Syntax
 * errors and invalid blocks throw a ConfigError naming the file; missing
 * files, DNS failures and aliasing are reported per `options` levels.
 */
export async function loadShaping(
  files: readonly string[],
  options: ShapingMergeOptions,
  resolver: Resolver,
): Promise<ShapingData> {
  const data = new ShapingData(resolver);
  const report = (level: ShapingLevel, msg: string) => {
    if (level === "Error") data.errors.push(msg);
    else if (level === "Warn") data.warnings.push(msg);
  };
  const domains = new Map<string, RawBlock>();
  const providers = new Map<string, RawProvider>();
  for (const name of files) {
    if (typeof name !== "string") {
      throw new ConfigError(`shaping files must be strings, got ${JSON.stringify(name)}`);
    }
    const text = await readSource(name, options, report);
    if (text === undefined) continue;
    let file: ShapingFile;
    try {
      file = parseShapingFile(
        parseShapingText(text, name),
        (m) => data.warnings.push(`${name}: ${m}`),
      );
    } catch (e) {
      if (e instanceof ConfigError && e.file === name) throw e;
      throw new ConfigError(`Cannot load shaping file "${name}": ${(e as Error).message}`, {
        file: name,
      });
    }
    for (const [k, b] of file.domains) domains.set(k, mergeBlock(domains.get(k), b));
    for (const [k, p] of file.providers) {
      providers.set(k, mergeProvider(providers.get(k), p));
    }
  }
  for (const [name, p] of providers) {
    data.providers.push({
      name,
      params: p.params,
      sources: p.sources,
      automation: p.automation,
      match: p.match,
    });
  }
  const toBlock = (b: RawBlock): Block => ({
    params: b.params,
    sources: b.sources,
    automation: b.automation,
    mxRollup: b.mxRollup !== false,
  });
  const rollups: [string, RawBlock][] = [];
  for (const [k, b] of domains) {
    if (k === "default") data.defaults = toBlock(b);
    else if (b.mxRollup === false) data.byDomain.set(k, toBlock(b));
    else rollups.push([k, b]);
  }
  const sites = await Promise.all(rollups.map(async ([domain]) => {
    try {
      const mx = await resolveMailExchanger(domain, resolver);
      if (mx.isNullMx) {
        report(options.null_mx, `domain '${domain}' has a NULL MX; its shaping block is ignored`);
        return undefined;
      }
      return mx.siteName;
    } catch (e) {
      report(
        options.dns_fail,
        `MX lookup for domain '${domain}' failed: ${
          (e as Error).message
        }; its shaping block is ignored`,
      );
      return undefined;
    }
  }));
  const aliases = new Map<string, string[]>();
  rollups.forEach(([domain, b], i) => {
    const site = sites[i];
    if (site === undefined) return;
    const prev = data.bySite.get(site);
    aliases.set(site, [...(aliases.get(site) ?? []), domain]);
    if (prev) {
      const merged = mergeBlock(
        mergeBlock(undefined, { ...prev, replaceBase: false }),
        { ...b, replaceBase: false },
      );
      data.bySite.set(site, toBlock(merged));
    } else data.bySite.set(site, toBlock(b));
  });
  for (const [site, domains] of aliases) {
    if (domains.length < 2) continue;
    report(
      options.aliased_site,
      `domains ${
        domains.map((d) => `'${d}'`).join(", ")
      } share MX site '${site}'; their blocks are merged`,
    );
  }
  if (options.provider_overlap !== "Ignore" && data.providers.length > 0) {
    // A rolled-up domain block that a provider also matches: both apply,
    // which is rarely what the author meant.
    const resolved = rollups.filter((_, i) => sites[i] !== undefined).map(([d]) => d);
    const matches = await Promise.all(resolved.map((d) => data.matchingProviders(d)));
    resolved.forEach((domain, i) => {
      if (matches[i].length === 0) return;
      report(
        options.provider_overlap,
        `domain '${domain}' is also matched by provider ${
          matches[i].map((p) => `'${p.name}'`).join(", ")
        }`,
      );
    });
  }
  return data;
}
