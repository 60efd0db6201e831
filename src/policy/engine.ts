/**
 * The policy engine: a pool of Lua contexts running the operator's policy,
 * and the one entry point every stage uses to fire a policy event.
 *
 * Place on the path: policy. Stages call {@linkcode PolicyEngine.call}; the
 * engine borrows an idle context (or creates one by re-running the policy
 * file), dispatches, and returns the context to the pool. Contexts are
 * retired after `maxContextAgeMs` (300 s), `maxContextUses` (1024) or when the
 * config epoch changes, so an edited policy takes effect gradually, as
 * upstream. `pre_init` and `init` run once, in the first context.
 *
 * It never starts listeners or opens spools itself: `init` records typed
 * configuration through the host catalogue and main.ts starts the stages.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { type DispatchResult, LuaContext } from "./lua_context.ts";
import { buildHost, type HostCatalogue } from "./host_functions.ts";
import { type MemoCache, MemoRegistry } from "./memoize_cache.ts";
import { PolicyError, PolicyReject } from "./policy_error.ts";
import { diag } from "../log/diag.ts";
import { parseMemoize } from "./config/memoize.ts";
import { countLuaLoad, luaEventTimer } from "../metrics/kumo_metrics.ts"; // [metrics]

/** Options for {@linkcode PolicyEngine.load}. */
export interface PolicyEngineOptions {
  /** Path of init.lua. */
  policyPath: string;
  /** `--validate`: `_VALIDATING_CONFIG = true`, nothing is started. */
  validating?: boolean;
  /** Program version, exposed as `kumo.version`. */
  version: string;
  /** The host functions beyond the engine's own. */
  catalogue: HostCatalogue;
  /** Most contexts dispatching at once; further calls wait. @default 512 */
  maxConcurrency?: number;
}

/** Lifecycle phase, for functions that may only run inside `init`. */
export type PolicyPhase = "load" | "pre_init" | "init" | "running";

/** The pool of Lua contexts and the event entry point. */
export class PolicyEngine {
  readonly policyPath: string;
  readonly policyDir: string;
  readonly version: string;
  readonly validating: boolean;
  epoch = 0;
  phase: PolicyPhase = "load";
  maxContextAgeMs = 300_000;
  maxContextUses = 1024;
  maxSpareContexts = 8192;
  validationFailed = false;
  /** Most dispatches that were in flight at once (metrics, tests). */
  peakConcurrency = 0;
  /** Called on `kumo.bump_config_epoch` and epoch changes (config caches). */
  onEpochBump: ((epoch: number) => void)[] = [];

  #catalogue: HostCatalogue;
  #idle: LuaContext[] = [];
  #handlers: ReadonlySet<string> = new Set();
  #memo = new MemoRegistry();
  #active = 0;
  #maxConcurrency: number;
  #waiters: (() => void)[] = [];
  #closed = false;

  private constructor(opts: PolicyEngineOptions) {
    this.policyPath = resolve(opts.policyPath);
    this.policyDir = dirname(this.policyPath);
    this.version = opts.version;
    this.validating = opts.validating ?? false;
    this.#catalogue = opts.catalogue;
    this.#maxConcurrency = opts.maxConcurrency ?? 512;
  }

  /**
   * Loads the policy: creates the first context (which runs the policy's
   * top-level code). Throws {@linkcode PolicyError} naming file and line.
   */
  static async load(opts: PolicyEngineOptions): Promise<PolicyEngine> {
    const engine = new PolicyEngine(opts);
    try {
      await Deno.stat(engine.policyPath);
    } catch (e) {
      throw new PolicyError(
        `Error evaluating policy file "${opts.policyPath}": ${(e as Error).message}`,
      );
    }
    const ctx = await engine.#createContext(opts.policyPath);
    engine.#handlers = ctx.handlerNames;
    engine.#idle.push(ctx);
    return engine;
  }

  /** The host functions handed to each new context (built once). */
  #host: Record<string, unknown> | undefined;

  async #createContext(displayPath = this.policyPath): Promise<LuaContext> {
    countLuaLoad(); // [metrics]
    const t0 = performance.now();
    try {
      const ctx = await LuaContext.create({
        policyPath: this.policyPath,
        host: this.#host ??= buildHost(this, this.#catalogue), // one host table for every context
        validating: this.validating,
        epoch: this.epoch,
      });
      if (diag.enabled("kumod::policy", "debug")) {
        diag.debug(
          "kumod::policy",
          `new Lua context: ran ${this.policyPath} (config epoch ${this.epoch}) in ${
            (performance.now() - t0).toFixed(1)
          } ms`,
        );
      }
      return ctx;
    } catch (e) {
      throw new PolicyError(
        `Error evaluating policy file "${displayPath}": ${(e as Error).message ?? e}`,
      );
    }
  }

  /** True when the policy registered a handler for `event`. */
  hasHandler(event: string): boolean {
    return this.#handlers.has(event);
  }

  /**
   * Runs `pre_init`, then `init` (and `validate_config` when validating),
   * all in one borrowed context as upstream: globals `pre_init` sets are
   * visible to `init`, and the three count as one use of that context.
   * Throws as {@linkcode callOrThrow} does.
   */
  async runInit(): Promise<void> {
    const ctx = await this.#borrow();
    const usesBefore = ctx.uses;
    try {
      const step = async (event: string) => {
        if (!ctx.hasHandler(event)) return;
        const done = luaEventTimer(event); // [metrics]
        try {
          valueOrThrow(await ctx.dispatch(event, "", []));
        } finally {
          done();
        }
      };
      this.phase = "pre_init";
      await step("pre_init");
      this.phase = "init";
      await step("init");
      if (this.validating) await step("validate_config");
      this.phase = "running";
    } finally {
      // pre_init, init and validate_config together are one use
      ctx.uses = usesBefore + 1;
      this.#giveBack(ctx);
    }
  }

  /**
   * Fires `event`. `kinds` has one letter per argument: `m` Message,
   * `c` conn_meta, anything else passes the value as is. Never throws for
   * handler errors: they come back as `{kind: "error"}` / `{kind: "reject"}`.
   * That includes a policy that no longer loads (edited after a config
   * epoch bump): its `Error evaluating policy file "...": <file>:<line>: ...`
   * comes back as `{kind: "error"}`.
   */
  async call(event: string, kinds: string, args: readonly unknown[]): Promise<DispatchResult> {
    if (!this.#handlers.has(event)) return { kind: "none" };
    const ctx = await this.#borrowOrError();
    if (!(ctx instanceof LuaContext)) return ctx;
    const done = luaEventTimer(event); // [metrics]
    try {
      return await ctx.dispatch(event, kinds, args);
    } finally {
      done();
      this.#giveBack(ctx);
    }
  }

  /**
   * Like {@linkcode call}, but a handler error throws: {@linkcode PolicyReject}
   * for `kumo.reject`, {@linkcode PolicyError} for anything else.
   * Returns the handler's first value (undefined when none).
   */
  async callOrThrow(event: string, kinds: string, args: readonly unknown[]): Promise<unknown> {
    return valueOrThrow(await this.call(event, kinds, args));
  }

  /**
   * [session] Borrows one context until `release()`, for a stage that keeps
   * a Lua object across calls: a custom_lua delivery session holds its
   * connection object in it (lua-api §4.5). Calls on the session must not
   * overlap; `release()` forgets the held objects and gives the context back.
   * Never throws: as with {@linkcode call}, a context that cannot be made
   * (a policy that no longer loads after a config epoch bump) comes back as
   * `{kind: "error"}` with its `Error evaluating policy file "...":
   * <file>:<line>: ...` message, and holds no slot.
   */
  async session(): Promise<PolicySession | SessionFailure> {
    const ctx = await this.#borrowOrError();
    if (!(ctx instanceof LuaContext)) return ctx;
    let released = false;
    return {
      kind: "session",
      hold: async (event, kinds, args) => {
        const r = await ctx.sessionOp("hold", event, "", kinds, args);
        if (r.kind !== "ok") return r;
        const key = r.values[0];
        return typeof key === "number" ? { kind: "held", key } : { kind: "none" };
      },
      has: async (key, method) => {
        const r = await ctx.sessionOp("has", key, method, "", []);
        return r.kind === "ok" && r.values[0] === true;
      },
      call: (key, method, kinds, args) => ctx.sessionOp("call", key, method, kinds, args),
      release: () => {
        if (released) return;
        released = true;
        // A context whose held objects could not be dropped is closed, not pooled.
        const retire = () => void (ctx.uses = Infinity);
        ctx.sessionOp("drop", "*", "", "", []).then((r) => r.kind === "error" && retire(), retire)
          .finally(() => this.#giveBack(ctx));
      },
    };
  }

  /** {@link #borrow}, with a context that cannot be made (a policy that no longer loads) as an error result. */
  async #borrowOrError(): Promise<
    LuaContext | { kind: "error"; message: string; traceback: string }
  > {
    try {
      return await this.#borrow();
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      return { kind: "error", message, traceback: message };
    }
  }

  async #borrow(): Promise<LuaContext> {
    while (this.#active >= this.#maxConcurrency) {
      await new Promise<void>((r) => this.#waiters.push(r));
    }
    this.#active++;
    if (this.#active > this.peakConcurrency) this.peakConcurrency = this.#active;
    const now = Date.now();
    while (this.#idle.length > 0) {
      const ctx = this.#idle.pop()!;
      if (this.#fresh(ctx, now)) return ctx;
      ctx.close();
    }
    try {
      const ctx = await this.#createContext();
      this.#handlers = ctx.handlerNames;
      return ctx;
    } catch (e) {
      this.#release();
      throw e;
    }
  }

  #fresh(ctx: LuaContext, now: number): boolean {
    return ctx.epoch === this.epoch && ctx.uses < this.maxContextUses &&
      now - ctx.createdAt < this.maxContextAgeMs;
  }

  #giveBack(ctx: LuaContext): void {
    if (
      !this.#closed && this.#fresh(ctx, Date.now()) && this.#idle.length < this.maxSpareContexts
    ) {
      this.#idle.push(ctx);
    } else {
      ctx.close();
    }
    this.#release();
  }

  #release(): void {
    this.#active--;
    this.#waiters.shift()?.();
  }

  /** Bumps the config epoch: pooled contexts and epoch caches are dropped. */
  bumpEpoch(): void {
    this.epoch++;
    for (const ctx of this.#idle.splice(0)) ctx.close();
    for (const f of this.onEpochBump) f(this.epoch);
    diag.info("kumod::config", `config epoch is now ${this.epoch}`);
  }

  /** The shared `kumo.memoize` cache for these options. */
  defineMemo(params: unknown): MemoCache {
    const o = parseMemoize(params);
    return this.#memo.define({
      name: o.name,
      ttlMs: o.ttl,
      capacity: o.capacity,
      invalidateWithEpoch: o.invalidateWithEpoch,
    });
  }

  /** `kumo.log_*` from Lua. */
  luaLog(level: string, where: string, text: string): void {
    const l = level as "error" | "warn" | "info" | "debug";
    if (diag.enabled("lua", l)) diag.log(l, "lua", `${where}: ${text}`);
  }

  /** Number of idle contexts (for tests and metrics). */
  get idleContexts(): number {
    return this.#idle.length;
  }

  /** [metrics] Contexts borrowed by dispatches in flight. */
  get activeContexts(): number {
    return this.#active;
  }

  /** Closes every pooled context. */
  close(): void {
    this.#closed = true;
    for (const ctx of this.#idle.splice(0)) ctx.close();
  }
}

/** A dispatch result's first value; a reject or an error is thrown. */
function valueOrThrow(r: DispatchResult): unknown {
  switch (r.kind) {
    case "none":
      return undefined;
    case "ok":
      return r.values[0] ?? undefined;
    case "reject":
      throw new PolicyReject(r.code, r.message, r.how);
    case "error":
      throw new PolicyError(r.message, r.traceback);
  }
}

/** [session] Why {@linkcode PolicyEngine.session} could not borrow a context. */
export type SessionFailure = Extract<DispatchResult, { kind: "error" }>;

/**
 * [session] One Lua context borrowed by {@linkcode PolicyEngine.session}.
 *
 * @example
 * ```ts
 * const s = await engine.session();
 * if (s.kind === "error") throw new Error(s.message);
 * const h = await s.hold("make.webhook", "sss", ["d.test", null, null]);
 * if (h.kind === "held") await s.call(h.key, "send", "m", [msg]);
 * s.release();
 * ```
 */
export interface PolicySession {
  /** Tells a session from a {@linkcode SessionFailure}. */
  readonly kind: "session";
  /** Fire `event` and keep its first return value in the context. */
  hold(
    event: string,
    kinds: string,
    args: readonly unknown[],
  ): Promise<DispatchResult | { kind: "held"; key: number }>;
  /** Whether held object `key` has a function `method`. */
  has(key: number, method: string): Promise<boolean>;
  /** `obj:method(...)` on held object `key`; kinds `M` = one list of Messages. */
  call(
    key: number,
    method: string,
    kinds: string,
    args: readonly unknown[],
  ): Promise<DispatchResult>;
  /** Forget held objects and return the context to the pool. */
  release(): void;
}
