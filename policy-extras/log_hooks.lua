-- policy-extras.log_hooks: deliver log records to your own code (or a
-- webhook) through a log hook and a `custom_lua` queue.
--
--   local log_hooks = require 'policy-extras.log_hooks'
--   log_hooks:new { name = 'webhook', constructor = function(domain, tenant, campaign)
--     return { send = function(message) ... end, close = function() end }
--   end }
--
-- Place on the path: beside the logs. Written for kumo-edge from
-- policy-extras.md §5. `new` registers: `pre_init` (calls
-- `kumo.configure_log_hook`), `should_enqueue_log_record` (routes the hook's
-- records to the queue `<name>.log_hook`, never records about log-hook
-- messages themselves), `get_queue_config` for that queue (protocol
-- `custom_lua`, constructor event `make.<name>.log_hook`) and the
-- constructor event. Whether records actually flow depends on the engine
-- delivering log-hook messages (see README).

local kumo = require 'kumo'

local mod = {}
local defined = {}

local function merge(dest, src)
  for k, v in pairs(src or {}) do dest[k] = v end
  return dest
end

local KNOWN = {
  name = true, constructor = true, log_parameters = true, queue_config = true,
  batch_size = true, min_batch_size = true, max_batch_latency = true, filter = true,
}

--- Define a log hook whose records are handed to `options.constructor`'s
--- connection object (`send(message)`, optional `close()`).
function mod:new(options)
  if type(options) ~= 'table' then error('log_hooks:new: expected a table of options', 2) end
  for k in pairs(options) do
    if not KNOWN[k] then error(string.format("log_hooks:new: unknown option '%s'", tostring(k)), 2) end
  end
  local name = options.name
  if type(name) ~= 'string' or name == '' then error('log_hooks:new: name must be a non-empty string', 2) end
  if type(options.constructor) ~= 'function' then
    error(string.format("log_hooks:new: log hook '%s' needs a constructor function", name), 2)
  end
  if defined[name] then error(string.format("log hook '%s' is already defined", name), 2) end
  defined[name] = true

  local queue_name = name .. '.log_hook'
  local constructor_event = 'make.' .. name .. '.log_hook'
  local filter = options.filter

  kumo.on('pre_init', function()
    kumo.configure_log_hook(merge({ name = name }, options.log_parameters))
  end)

  kumo.on('should_enqueue_log_record', function(msg, hook_name)
    if hook_name ~= name then return end
    local record = msg:get_meta('log_record')
    if type(record) == 'table' and record.reception_protocol == 'LogRecord' then
      -- a record about a log-hook message: never feed it back in
      return false
    end
    if filter and filter(msg, hook_name) then return false end
    msg:set_meta('queue', queue_name)
    return true
  end)

  kumo.on('get_queue_config', function(domain, tenant, campaign, routing_domain)
    if domain ~= queue_name then return end
    local params = merge({ retry_interval = '1m', max_retry_interval = '20m' }, options.queue_config)
    params.protocol = {
      custom_lua = {
        constructor = constructor_event,
        batch_size = options.batch_size,
        min_batch_size = options.min_batch_size,
        max_batch_latency = options.max_batch_latency,
      },
    }
    return kumo.make_queue_config(params)
  end)

  kumo.on(constructor_event, function(domain, tenant, campaign)
    return options.constructor(domain, tenant, campaign)
  end)
end

--- A log hook POSTing each record's JSON to `options.url`; a non-2xx answer
--- fails the attempt (`kumo.reject(500, ...)`) so it is retried. Needs
--- `kumo.http`.
function mod:new_json(options)
  if type(options) ~= 'table' then error('log_hooks:new_json: expected a table of options', 2) end
  if kumo.http == nil or kumo.http.build_client == nil then
    error('log_hooks:new_json: kumo.http is not available in this kumo-edge build; '
      .. 'use log_hooks:new with your own constructor', 2)
  end
  local url = options.url
  if type(url) ~= 'string' then error('log_hooks:new_json: url must be a string', 2) end
  mod:new {
    name = options.name,
    log_parameters = options.log_parameters,
    queue_config = options.queue_config,
    constructor = function(domain, tenant, campaign)
      local client = kumo.http.build_client {}
      local connection = {}
      function connection:send(message)
        local response = client:post(url):header('Content-Type', 'application/json')
          :body(message:get_data()):send()
        local status = response:status_code()
        if status >= 200 and status < 300 then return end
        kumo.reject(500, string.format('%d %s: %s', status, response:status_reason(), response:text()))
      end
      function connection:close() client:close() end
      return connection
    end,
  }
end

--- A log hook calling `options.hook(msg, record)` for every record.
function mod:new_disposition_hook(options)
  if type(options) ~= 'table' or type(options.hook) ~= 'function' then
    error('log_hooks:new_disposition_hook: expected { name = ..., hook = function(msg, record) }', 2)
  end
  local hook = options.hook
  mod:new {
    name = options.name,
    log_parameters = options.log_parameters,
    queue_config = options.queue_config,
    constructor = function()
      local connection = {}
      function connection:send(message)
        hook(message, kumo.json_parse(message:get_data()))
      end
      function connection:close() end
      return connection
    end,
  }
end

return mod
