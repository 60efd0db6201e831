/**
 * The parts of KumoMTA's Lua API that kumo-edge does not implement
 * (lua-api.md §5.5, §8 long tail): calling one raises
 * `kumo.<name> is not implemented by kumo-edge` at the caller's file:line,
 * so a policy that relies on one fails at startup with a clear cause
 * instead of "attempt to call a nil value".
 *
 * Place on the path: policy. A Lua chunk run by the prelude after every
 * host function is installed (through the host-object glue): it fills in
 * only names that are still nil, so an implementation added later wins.
 * Whole modules (`kumo.kafka`, `kumo.spf`, ...) become tables whose every
 * field is such a function; `require 'redis'` / `require 'sqlite'` fail the
 * same way.
 *
 * @module
 */

/** Single functions refused, by dotted name under `kumo`. */
export const UNSUPPORTED_FUNCTIONS: readonly string[] = [
  "configure_redis_throttles",
  "configure_bounce_classifier",
  "configure_log_disposition_hook",
  "dns.configure_test_mta_sts",
  "dns.configure_unbound_resolver",
  "api.inject.inject_v1",
  "http.connect_websocket",
  "compute_queue_config_constraints",
  "compute_egress_path_config_constraints",
  "format_egress_path_config_constraints",
  "prometheus_metrics",
  "spawn_thread_pool",
  "enable_memory_callstack_tracking",
];

/** Modules refused as a whole (`kumo.<module>.<anything>`). */
export const UNSUPPORTED_MODULES: readonly string[] = [
  "aaa",
  "amqp",
  "counter_series",
  "crypto",
  "dmarc",
  "file_type",
  "jsonl",
  "kafka",
  "mimepart",
  "mpsc",
  "nats",
  "spf",
  "xfer",
];

/** Top-level modules `require` refuses. */
export const UNSUPPORTED_REQUIRES: readonly string[] = ["redis", "sqlite"];

const luaList = (names: readonly string[]) =>
  `{ ${names.map((n) => JSON.stringify(n)).join(", ")} }`;

/** Lua half: called as `chunk(kumo)` after the host functions are installed. */
export const UNSUPPORTED_LUA = String.raw`
local kumo = ...
local function refuse(name)
  return function() error(name .. ' is not implemented by kumo-edge', 2) end
end
for _, path in ipairs(${luaList(UNSUPPORTED_FUNCTIONS)}) do
  local t, parts = kumo, {}
  for p in path:gmatch('[^.]+') do parts[#parts + 1] = p end
  for i = 1, #parts - 1 do
    if t[parts[i]] == nil then t[parts[i]] = {} end
    t = t[parts[i]]
  end
  if t[parts[#parts]] == nil then t[parts[#parts]] = refuse('kumo.' .. path) end
end
for _, m in ipairs(${luaList(UNSUPPORTED_MODULES)}) do
  if kumo[m] == nil then
    kumo[m] = setmetatable({}, {
      __index = function(_, k) return refuse('kumo.' .. m .. '.' .. tostring(k)) end,
    })
  end
end
for _, r in ipairs(${luaList(UNSUPPORTED_REQUIRES)}) do
  package.preload[r] = function()
    -- level 3: the chunk that called require, not require itself
    error("require '" .. r .. "' is not implemented by kumo-edge", 3)
  end
end
`;
