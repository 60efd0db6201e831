/**
 * The admin API (`/api/admin/*`, http-api.md §6): bounce, suspend,
 * suspend-ready-q, inspect-message, inspect-sched-q, ready-q-states,
 * rebind, bump-config-epoch, set_diagnostic_log_filter.
 *
 * Place on the path: mounted by `src/http/app.ts` on every HTTP listener.
 * Every admin route must be registered with the `trusted` access rule:
 * `app.post("/api/admin/x/v1", authorize(services, "trusted"), handler)`
 * (see `../access_rules.ts`). One file per endpoint beside this one.
 *
 * @module
 */

import type { Hono } from "hono";
import type { HttpEnv } from "../access_rules.ts";
import type { HttpServices } from "../http_services.ts";
import { mountBounceV1 } from "./bounce_v1.ts";
import { mountSuspendV1 } from "./suspend_v1.ts";
import { mountSuspendReadyQV1 } from "./suspend_ready_q_v1.ts";
import { mountInspectMessageV1 } from "./inspect_message_v1.ts";
import { mountInspectSchedQV1 } from "./inspect_sched_q_v1.ts";
import { mountReadyQStatesV1 } from "./ready_q_states_v1.ts";
import { mountRebindV1 } from "./rebind_v1.ts";
import { mountBumpConfigEpoch } from "./bump_config_epoch.ts";
import { mountSetDiagnosticLogFilterV1 } from "./set_diagnostic_log_filter_v1.ts";

/**
 * Register the admin routes on `app`.
 *
 * @example
 * ```ts
 * mountAdminRoutes(app, services);
 * ```
 */
export function mountAdminRoutes(app: Hono<HttpEnv>, services: HttpServices): void {
  mountBounceV1(app, services);
  mountSuspendV1(app, services);
  mountSuspendReadyQV1(app, services);
  mountInspectMessageV1(app, services);
  mountInspectSchedQV1(app, services);
  mountReadyQStatesV1(app, services);
  mountRebindV1(app, services);
  mountBumpConfigEpoch(app, services);
  mountSetDiagnosticLogFilterV1(app, services);
}
