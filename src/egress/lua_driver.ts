/**
 * The `custom_lua` delivery protocol (lua-api §4.5, §6.3): per delivery
 * session the constructor event `(domain, tenant, campaign)` returns a
 * connection object; each message goes to its `send(self, msg)` (or a batch
 * to `send_batch(self, msgs)`), and `close(self)` ends the session.
 *
 * Place on the path: egress, used by a ready queue named
 * `<source>-><routing_domain>@lua:<constructor>`. The connection object
 * lives in one Lua context, borrowed for the session's lifetime through
 * `PolicyEngine.session()`. Outcomes (lua-api §3): a returned string is a
 * Delivery (code 200, as upstream), `kumo.reject` 4xx a TransientFailure
 * (421 also ends the session), any other code a Bounce; any other Lua error
 * ends the session and fails the message transiently.
 *
 * @module
 */

import type { PolicyEngine, PolicySession } from "../policy/engine.ts";
import type { Message } from "../message/message.ts";
import type { DispatchResult } from "../policy/lua_context.ts";
import { diag } from "../log/diag.ts";
import {
  type DeliveryDriver,
  type DeliverySession,
  plainResponse,
  type SessionComponents,
  type SessionResult,
} from "./delivery_driver.ts";

/** `custom_lua` settings of a queue config. */
export interface LuaDriverOptions {
  constructorEvent: string;
  batchSize: number;
  minBatchSize: number;
  maxBatchLatency: number;
}

function failed(text: string): SessionResult {
  return {
    outcome: "TransientFailure",
    response: plainResponse(400, `KumoMTA internal: failed to send message: ${text}`),
  };
}

/** Map one `send` dispatch to an outcome; `close` set when the session must end. */
function outcomeOf(r: DispatchResult, value: unknown): { result: SessionResult; close: boolean } {
  switch (r.kind) {
    case "reject": {
      const response = plainResponse(r.code, r.message);
      if (r.code >= 400 && r.code < 500) {
        return { result: { outcome: "TransientFailure", response }, close: r.code === 421 };
      }
      return { result: { outcome: "Bounce", response }, close: false };
    }
    case "error":
      return { result: failed(r.message), close: true };
    default:
      return {
        result: { outcome: "Delivery", response: plainResponse(200, String(value ?? "")) },
        close: false,
      };
  }
}

class LuaSession implements DeliverySession {
  #s: PolicySession;
  #key: number;
  #batch: boolean;
  #hasClose: boolean;
  #where: string;
  closed = false;

  constructor(s: PolicySession, key: number, batch: boolean, hasClose: boolean, where: string) {
    this.#s = s;
    this.#key = key;
    this.#batch = batch;
    this.#hasClose = hasClose;
    this.#where = where;
  }

  async send(batch: readonly Message[]): Promise<SessionResult[]> {
    if (this.#batch) {
      const r = await this.#s.call(this.#key, "send_batch", "M", [batch]);
      const v = r.kind === "ok" ? r.values[0] : undefined;
      if (Array.isArray(v) && v.length === batch.length) {
        return v.map((x) => outcomeOf(r, x).result);
      }
      const { result, close } = outcomeOf(r, v);
      if (close) this.closed = true;
      if (r.kind === "error") this.#logError(r.message);
      return batch.map(() => result);
    }
    const out: SessionResult[] = [];
    for (const msg of batch) {
      if (this.closed) {
        out.push(failed("session closed"));
        continue;
      }
      const r = await this.#s.call(this.#key, "send", "m", [msg]);
      const { result, close } = outcomeOf(r, r.kind === "ok" ? r.values[0] : undefined);
      if (r.kind === "error") this.#logError(r.message);
      if (close) this.closed = true;
      out.push(result);
    }
    return out;
  }

  #logError(text: string): void {
    diag.error("kumod::lua_deliver", `Error sending via ${this.#where}: ${text}`);
  }

  #ended = false;

  async close(): Promise<void> {
    this.closed = true;
    if (this.#ended) return;
    this.#ended = true;
    try {
      if (this.#hasClose) {
        const r = await this.#s.call(this.#key, "close", "", []);
        if (r.kind === "error" || r.kind === "reject") {
          diag.error(
            "kumod::lua_deliver",
            `Error while closing connection for ${this.#where}: ${
              r.kind === "error" ? r.message : `${r.code} ${r.message}`
            }`,
          );
        }
      }
    } finally {
      this.#s.release();
    }
  }
}

/**
 * Build the `custom_lua` driver of a ready queue.
 *
 * @example
 * ```ts
 * const d = luaDriver(engine, { constructorEvent: "make.hook", batchSize: 1, minBatchSize: 1, maxBatchLatency: 0 });
 * const s = await d.open({ domain: "hook" });
 * const [r] = await s.send([msg]); // { outcome: "Delivery", ... }
 * await s.close();
 * ```
 */
export function luaDriver(engine: PolicyEngine, o: LuaDriverOptions): DeliveryDriver {
  const event = o.constructorEvent;
  return {
    deliveryProtocol: "Lua",
    peer: { name: `Lua via ${event}`, addr: "0.0.0.0" },
    batchSize: o.batchSize,
    minBatchSize: Math.min(o.minBatchSize, o.batchSize),
    maxBatchLatency: o.maxBatchLatency,
    async open(c: SessionComponents): Promise<DeliverySession> {
      if (!engine.hasHandler(event)) {
        throw new Error(`Cannot open custom_lua session: no handler for event "${event}"`);
      }
      const s = await engine.session();
      if (s.kind === "error") {
        // e.g. the policy no longer loads after a config epoch bump (file:line in the text)
        throw new Error(`Cannot open custom_lua session via "${event}": ${s.message}`);
      }
      try {
        const h = await s.hold(event, "sss", [c.domain, c.tenant ?? null, c.campaign ?? null]);
        if (h.kind !== "held") {
          const why = h.kind === "error"
            ? h.message
            : h.kind === "reject"
            ? `${h.code} ${h.message}`
            : "it returned no connection object";
          throw new Error(`Cannot open custom_lua session via "${event}": ${why}`);
        }
        const hasBatch = await s.has(h.key, "send_batch");
        const hasSend = await s.has(h.key, "send");
        if (!hasSend && !hasBatch) {
          throw new Error(
            `Cannot open custom_lua session via "${event}": the connection object has no send method`,
          );
        }
        if (o.batchSize > 1 && !hasBatch) {
          throw new Error(
            `Cannot open custom_lua session via "${event}": batch_size ${o.batchSize} needs a send_batch method`,
          );
        }
        const batch = hasBatch && (o.batchSize > 1 || !hasSend);
        return new LuaSession(s, h.key, batch, await s.has(h.key, "close"), event);
      } catch (e) {
        s.release();
        throw e;
      }
    },
  };
}
