/**
 * Where a scheduled queue of a non-SMTP protocol sends its messages: the
 * ready-queue site and protocol parts (`<source>-><routing_domain>@lua:<constructor>`,
 * `...@maildir:<path>`; queues-and-delivery §2) and the driver that delivers.
 *
 * Place on the path: queue stage, at promotion, for queue configs whose
 * `protocol` is `custom_lua` or `maildir_path`. SMTP queues never come here.
 *
 * @module
 */

import type { QueueConfig } from "../policy/config/queue_config.ts";
import type { PolicyEngine } from "../policy/engine.ts";
import type { MailExchanger } from "../dns/mail_exchanger.ts";
import type { DeliveryDriver } from "../egress/delivery_driver.ts";
import { luaDriver } from "../egress/lua_driver.ts";
import { maildirDriver } from "../egress/maildir_driver.ts";

/** Ready-queue naming and driver of one non-SMTP queue. */
export interface ProtocolRoute {
  /** Site part of the ready-queue name (the routing domain, as upstream). */
  site: string;
  /** Protocol part: `lua:<constructor>` / `maildir:<path>`. */
  protocol: string;
  /** Stand-in MailExchanger (only its `siteName` is used, for get_egress_path_config). */
  mx: MailExchanger;
  /** Build the driver when the ready queue is created. */
  driver(): DeliveryDriver;
}

/**
 * The route of a `custom_lua` / `maildir_path` queue, or null for SMTP and
 * unsupported protocols.
 *
 * @example
 * ```ts
 * const r = protocolRoute(cfg, "hook.log_hook", engine); // r.protocol === "lua:make.hook"
 * ```
 */
export function protocolRoute(
  cfg: QueueConfig,
  routing: string,
  engine: PolicyEngine,
): ProtocolRoute | null {
  const p = cfg.protocol;
  if (p.kind !== "lua" && p.kind !== "maildir") return null;
  const mx: MailExchanger = {
    domainName: routing,
    hosts: [],
    byPref: new Map(),
    siteName: routing,
    isDomainLiteral: false,
    isMx: false,
    isNullMx: false,
  };
  if (p.kind === "lua") {
    return {
      site: routing,
      protocol: `lua:${p.constructorEvent}`,
      mx,
      driver: () => luaDriver(engine, p),
    };
  }
  return {
    site: routing,
    protocol: `maildir:${p.maildirPath}`,
    mx,
    driver: () => maildirDriver(p),
  };
}
