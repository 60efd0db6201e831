--[[
policy-extras.queue: tenant / campaign assignment at reception and queue
configuration (get_queue_config) from TOML/JSON data. kumo-edge's own
implementation of the helper described in policy-extras.md section 3.

Place on the mail's path: reception (q:apply(msg) sets meta tenant,
campaign and routing_domain, which name the scheduled queue) and queueing
(get_queue_config builds the queue's config from the data's layers).

Usage:
  local queue_helper = require 'policy-extras.queue'
  local q = queue_helper:setup { '/opt/kumomta/etc/policy/queues.toml' }
  kumo.on('smtp_server_message_received', function(msg) q:apply(msg) end)

Register it after every other get_queue_config handler: its handler always
returns a config, so handlers registered later never run (a handler
registered before it still answers for the queues it returns a config for).
overall_max_message_rate (tenant, and campaign with the tenant's spec as
upstream) is enforced at throttle_insert_ready_queue with kumo.make_throttle.
]]
local kumo = require 'kumo'

local mod = { CONFIGURED = false }

local TOP_KEYS = {
  scheduling_header = 'string', tenant_header = 'string', remove_tenant_header = 'boolean',
  campaign_header = 'string', remove_campaign_header = 'boolean', default_tenant = 'string',
}
-- Keys the helper understands besides kumo.make_queue_config options.
local EXTRA_KEYS = { routing_domain = true, overall_max_message_rate = true, require_authz = true }

---------------------------------------------------------------------------
-- Queue config options: asked of kumo.make_queue_config itself.

local option_names = {}

-- Returns true when {k = v} is accepted by kumo.make_queue_config; false
-- and the reason otherwise; the third value tells an unknown key apart.
local function try_option(k, v)
  local ok, err = pcall(kumo.make_queue_config, { [k] = v })
  if ok then
    option_names[k] = true
    return true
  end
  err = tostring(err)
  local unknown = err:find('unknown field `' .. tostring(k) .. '`', 1, true) ~= nil
  if not unknown then option_names[k] = true end
  return false, err, unknown
end

local function is_option_name(k)
  local known = option_names[k]
  if known ~= nil then return known end
  -- probe with a value no option accepts silently: only an unknown key
  -- makes the constructor name the key itself as an unknown field
  local _, _, unknown = try_option(k, false)
  option_names[k] = not unknown
  return not unknown
end

function mod.is_queue_config_option(k, v)
  return (try_option(k, v))
end

---------------------------------------------------------------------------
-- Data validation and normalisation

local function fail(origin, fmt, ...)
  error(origin .. ': ' .. string.format(fmt, ...), 0)
end

local function check_rate(origin, record, k, v)
  local ok, err = pcall(kumo.make_queue_config, { max_message_rate = v })
  if not ok or type(v) ~= 'string' then
    fail(origin, "%s: invalid value for field '%s'\n%s", record, k, tostring(err or 'expected a string'))
  end
end

-- Checks one key of a record that also takes queue options.
local function check_option(origin, record, k, v)
  local ok, err, unknown = try_option(k, v)
  if ok then return end
  if unknown then fail(origin, "%s: unknown field '%s'", record, k) end
  fail(origin, "%s: invalid value for field '%s'\n%s", record, k, err)
end

local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

local function normalise_tenant(origin, name, t)
  if type(t) ~= 'table' then fail(origin, "TenantConfig: tenant '%s' must be a table", name) end
  local out = { params = {}, campaigns = {} }
  for k, v in pairs(t) do
    if k == 'require_authz' then
      if type(v) ~= 'table' then fail(origin, "TenantConfig: invalid value for field 'require_authz'\nExpected 'table', got '%s'", type(v)) end
      for i, id in ipairs(v) do
        if type(id) ~= 'string' then
          fail(origin, "TenantConfig: invalid value for field 'require_authz'\nlist<string>: invalid value for idx %d", i)
        end
      end
      out.require_authz = copy(v)
    elseif k == 'overall_max_message_rate' then
      check_rate(origin, 'TenantConfig', k, v)
      out.overall_max_message_rate = v
    elseif k == 'campaigns' then
      if type(v) ~= 'table' then fail(origin, "TenantConfig: invalid value for field 'campaigns'") end
      for cname, c in pairs(v) do
        if type(c) ~= 'table' then fail(origin, "map<string,CampaignConfig>: invalid value for key '%s'", cname) end
        local cp = {}
        for ck, cv in pairs(c) do
          if ck == 'overall_max_message_rate' then check_rate(origin, 'CampaignConfig', ck, cv)
          else check_option(origin, 'CampaignConfig', ck, cv) end
          cp[ck] = cv
        end
        out.campaigns[cname] = cp
      end
    else
      check_option(origin, 'TenantConfig', k, v)
      out.params[k] = v
    end
  end
  return out
end

-- [queue."D"] -> { params, tenants = { T = { params, campaigns = { C = params } } } }
local function split_block(origin, label, block, depth)
  if type(block) ~= 'table' then
    fail(origin, "QueueConfig '%s': expected a table, got %s", label, type(block))
  end
  local params, children = {}, {}
  for k, v in pairs(block) do
    if k == 'routing_domain' then
      if type(v) ~= 'string' then fail(origin, "QueueConfig '%s': invalid value for field 'routing_domain'\nExpected 'string', got '%s'", label, type(v)) end
      params[k] = v
    elseif k == 'overall_max_message_rate' then
      check_rate(origin, 'QueueConfig', k, v)
      params[k] = v
    elseif is_option_name(k) then
      check_option(origin, "QueueConfig '" .. label .. "'", k, v)
      params[k] = v
    elseif depth >= 2 then
      fail(origin, "QueueConfig '%s': unknown field '%s'", label, k)
    else
      -- any other key names a tenant (depth 0) or a campaign (depth 1)
      if type(v) ~= 'table' then
        fail(origin, "QueueConfig '%s': unknown field '%s' (tenant and campaign blocks must be tables)", label, k)
      end
      children[k] = v
    end
  end
  return params, children
end

local function normalise_queue(origin, pattern, block)
  local params, tenants = split_block(origin, pattern, block, 0)
  local out = { params = params, tenants = {} }
  for tname, tblock in pairs(tenants) do
    local tparams, campaigns = split_block(origin, pattern .. '.' .. tname, tblock, 1)
    local t = { params = tparams, campaigns = {} }
    for cname, cblock in pairs(campaigns) do
      t.campaigns[cname] = (split_block(origin, pattern .. '.' .. tname .. '.' .. cname, cblock, 2))
    end
    out.tenants[tname] = t
  end
  return out
end

local function merge_params(dest, src)
  for k, v in pairs(src) do dest[k] = v end
end

local function merge_queue(dest, src)
  if dest == nil then return src end
  merge_params(dest.params, src.params)
  for t, tb in pairs(src.tenants) do
    local d = dest.tenants[t]
    if d == nil then dest.tenants[t] = tb
    else
      merge_params(d.params, tb.params)
      for c, cp in pairs(tb.campaigns) do
        d.campaigns[c] = d.campaigns[c] or {}
        merge_params(d.campaigns[c], cp)
      end
    end
  end
  return dest
end

local function merge_tenant(dest, src)
  if dest == nil then return src end
  merge_params(dest.params, src.params)
  if src.require_authz then dest.require_authz = src.require_authz end
  if src.overall_max_message_rate then dest.overall_max_message_rate = src.overall_max_message_rate end
  for c, cp in pairs(src.campaigns) do
    dest.campaigns[c] = dest.campaigns[c] or {}
    merge_params(dest.campaigns[c], cp)
  end
  return dest
end

local function read_file(f)
  if type(f) == 'table' then return f, 'inline table' end
  if type(f) ~= 'string' then error('queue helper: file names must be strings or tables', 0) end
  if f:match('%.toml$') then return kumo.toml_load(f), f end
  return kumo.json_load(f), f
end

local function load_data(file_names)
  local data = { tenants = {}, queues = {} }
  for _, f in ipairs(file_names) do
    local raw, origin = read_file(f)
    for k, v in pairs(raw) do
      if TOP_KEYS[k] then
        if type(v) ~= TOP_KEYS[k] then
          fail(origin, "QueueHelperConfig: invalid value for field '%s'\nExpected '%s', got '%s' %s",
            k, TOP_KEYS[k], type(v), tostring(v))
        end
        data[k] = v
      elseif k == 'tenant' or k == 'tenants' then
        if type(v) ~= 'table' then fail(origin, "QueueHelperConfig: invalid value for field '%s'", k) end
        for name, t in pairs(v) do
          data.tenants[name] = merge_tenant(data.tenants[name], normalise_tenant(origin, name, t))
        end
      elseif k == 'queue' or k == 'queues' then
        if type(v) ~= 'table' then fail(origin, "QueueHelperConfig: invalid value for field '%s'", k) end
        for pattern, block in pairs(v) do
          data.queues[pattern] = merge_queue(data.queues[pattern], normalise_queue(origin, pattern, block))
        end
      else
        fail(origin, "QueueHelperConfig: unknown field '%s'", tostring(k))
      end
    end
  end
  local default = data.queues.default
  local map = {}
  for pattern, block in pairs(data.queues) do
    if pattern ~= 'default' then map[pattern] = block end
  end
  data.default_queue = default
  data.queues = nil
  data.queue_blocks = map
  data.queue_map = kumo.domain_map.new(map)
  return data
end

---------------------------------------------------------------------------
-- Resolution: default < domain < tenant < domain.tenant < domain.tenant.campaign

local function resolve(data, domain, tenant, campaign)
  local params = { refresh_strategy = 'Epoch' }
  if data.default_queue then merge_params(params, data.default_queue.params) end
  local block = domain and data.queue_map[domain]
  if block then merge_params(params, block.params) end
  local t = tenant and data.tenants[tenant]
  if t then
    merge_params(params, t.params)
    if t.require_authz then params.require_authz = t.require_authz end
    if t.overall_max_message_rate then params.overall_max_message_rate = t.overall_max_message_rate end
  end
  local bt = block and tenant and block.tenants[tenant]
  if bt then
    merge_params(params, bt.params)
    local bc = campaign and bt.campaigns[campaign]
    if bc then merge_params(params, bc) end
  end
  return params
end

local function only_options(params)
  local out = {}
  for k, v in pairs(params) do
    if not EXTRA_KEYS[k] and is_option_name(k) then out[k] = v end
  end
  return out
end

-- provider_name back-fill: what shaping would say for this destination.
local function speculative_provider(domain, routing_domain)
  local target = routing_domain or domain
  local ok, mx = pcall(kumo.dns.lookup_mx, target)
  if not ok or type(mx) ~= 'table' then return nil end
  if kumo.invoke_get_egress_path_config == nil then return nil end
  local ok2, path = pcall(kumo.invoke_get_egress_path_config, target, 'unspecified', mx.site_name)
  if ok2 and type(path) == 'table' then return path.provider_name end
  return nil
end
local cached_provider = kumo.memoize(speculative_provider, {
  name = 'queue_helper_provider_name', ttl = '5 minutes', capacity = 1024, invalidate_with_epoch = true,
})

function mod:resolve_provider(domain, routing_domain)
  return cached_provider(domain, routing_domain)
end

---------------------------------------------------------------------------
-- Setup

local SETUP_KEYS = { file_names = true, skip_queue_config_hook = true, invalidate_with_epoch = true }

local Helper = {}
Helper.__index = Helper

function Helper:resolve_config(domain, tenant, campaign)
  return resolve(self.load(), domain, tenant, campaign)
end

local function reject_unless_authorized(msg, tenant, t)
  if not t.require_authz then return end
  local authz = msg:get_meta('authz_id')
  if authz == nil or authz == '' then
    kumo.reject(500, string.format("tenant '%s' requires SMTP AUTH", tenant))
  end
  for _, id in ipairs(t.require_authz) do
    if id == authz then return end
  end
  kumo.reject(500, string.format("authz_id '%s' is not authorized to send as tenant '%s'", authz, tenant))
end

function Helper:apply(msg)
  local data = self.load()
  if data.scheduling_header then msg:import_scheduling_header(data.scheduling_header, true) end

  if data.campaign_header then
    local c = msg:get_first_named_header_value(data.campaign_header)
    if c ~= nil then
      msg:set_meta('campaign', c)
      if data.remove_campaign_header then msg:remove_all_named_headers(data.campaign_header) end
    end
  end

  local tenant, origin
  if data.tenant_header then
    tenant = msg:get_first_named_header_value(data.tenant_header)
    if tenant ~= nil then
      origin = string.format("'%s' header", data.tenant_header)
      if data.remove_tenant_header then msg:remove_all_named_headers(data.tenant_header) end
    end
  end
  if tenant == nil and data.default_tenant then
    tenant = data.default_tenant
    origin = 'default_tenant option'
  end
  if tenant ~= nil then
    local t = data.tenants[tenant]
    if t == nil then
      kumo.reject(500, string.format("tenant '%s' specified by %s is not defined in your queue config", tenant, origin))
    end
    reject_unless_authorized(msg, tenant, t)
    msg:set_meta('tenant', tenant)
  end

  local rcpt = msg:recipient_list()[1]
  if rcpt then
    local params = resolve(data, string.lower(rcpt.domain), tenant, msg:get_meta('campaign'))
    if params.routing_domain then msg:set_meta('routing_domain', params.routing_domain) end
  end
end

-- Simple glob match for the config-monitor check (used only when the
-- monitor hands back patterns rather than file names).
local function glob_match(glob, path)
  local pat = glob:gsub('[%^%$%(%)%%%.%[%]%+%-]', '%%%0')
    :gsub('%*%*/', '\1'):gsub('%*%*', '\2'):gsub('%*', '[^/]*'):gsub('%?', '[^/]')
    :gsub('\1', '.-'):gsub('\2', '.*')
  return path:match('^' .. pat .. '$') ~= nil
end

local function monitored(file, list)
  -- a relative name (e.g. 'examples/queues.toml') is compared with the end
  -- of the absolute names the monitor returns
  local rel = file:sub(1, 1) ~= '/' and '/' .. file:gsub('^%./', '') or nil
  for _, g in ipairs(list or {}) do
    if g == file or glob_match(g, file) then return true end
    if rel and g:sub(-#rel) == rel then return true end
  end
  return false
end

local function frames_mention(frames, needle)
  for _, f in ipairs(frames or {}) do
    if tostring(f):find(needle, 1, true) then return true end
  end
  return false
end

-- egress_pool names used by the data that the sources helper (when the
-- policy uses it) does not define, as printable problems.
local function undefined_pools(data)
  local sources_mod = package.loaded['policy-extras.sources']
  if type(sources_mod) ~= 'table' or not sources_mod.CONFIGURED then return {} end
  local ok, sdata = pcall(sources_mod.load_data, sources_mod.CONFIGURED.data_files)
  if not ok then return {} end
  local problems = {}
  local function check(where, params)
    local pool = params and params.egress_pool
    if pool ~= nil and sdata.raw.pools[pool] == nil then
      problems[#problems + 1] = string.format(
        "%s uses egress_pool '%s' which is not defined by the sources helper", where, pool)
    end
  end
  local function sorted(t)
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys)
    return keys
  end
  for _, name in ipairs(sorted(data.tenants)) do
    local t = data.tenants[name]
    check(string.format("tenant '%s'", name), t.params)
    for _, c in ipairs(sorted(t.campaigns)) do
      check(string.format("tenant '%s' campaign '%s'", name, c), t.campaigns[c])
    end
  end
  local blocks = {}
  if data.default_queue then blocks.default = data.default_queue end
  for pattern, block in pairs(data.queue_blocks) do blocks[pattern] = block end
  for _, pattern in ipairs(sorted(blocks)) do
    local block = blocks[pattern]
    check(string.format("queue '%s'", pattern), block.params)
    for _, tname in ipairs(sorted(block.tenants)) do
      local bt = block.tenants[tname]
      check(string.format("queue '%s.%s'", pattern, tname), bt.params)
      for _, cname in ipairs(sorted(bt.campaigns)) do
        check(string.format("queue '%s.%s.%s'", pattern, tname, cname), bt.campaigns[cname])
      end
    end
  end
  return problems
end

function mod:setup_with_options(options)
  if mod.CONFIGURED then error('queues module has already been configured', 2) end
  if type(options) ~= 'table' then error('QueueHelperSetup: options must be a table', 2) end
  for k in pairs(options) do
    if not SETUP_KEYS[k] then error(string.format("QueueHelperSetup: unknown field '%s'", tostring(k)), 2) end
  end
  if type(options.file_names) ~= 'table' then
    error("QueueHelperSetup: missing value for field 'file_names' of type 'list<string|table>'", 2)
  end
  local file_names = options.file_names

  local cached = kumo.memoize(load_data, {
    name = 'queue_helper_data', ttl = '1 minute', capacity = 10,
    invalidate_with_epoch = options.invalidate_with_epoch == true,
  })
  local helper = setmetatable({ file_names = file_names }, Helper)
  helper.load = function() return cached(file_names) end

  if not options.skip_queue_config_hook then
    kumo.on('get_queue_config', function(domain, tenant, campaign, routing_domain)
      local params = only_options(resolve(helper.load(), domain, tenant, campaign))
      if params.provider_name == nil then
        params.provider_name = cached_provider(domain, routing_domain)
      end
      return kumo.make_queue_config(params)
    end)
  end

  -- overall_max_message_rate: process-wide throttles (kumo.make_throttle)
  -- checked as a message moves to its ready queue; a throttled message has
  -- its due time pushed back, without counting an attempt.
  kumo.on('throttle_insert_ready_queue', function(msg)
    local tenant = msg:get_meta('tenant')
    if tenant == nil then return end
    local t = helper.load().tenants[tenant]
    if t == nil then return end
    if t.overall_max_message_rate then
      local throttle = kumo.make_throttle('queue-helper-tenant-overall_max_message_rate-' .. tenant,
        t.overall_max_message_rate)
      if throttle:delay_message_if_throttled(msg) then return end
    end
    local campaign = msg:get_meta('campaign')
    local c = campaign and t.campaigns[campaign]
    if c and c.overall_max_message_rate then
      -- As upstream: the campaign's throttle is built with the tenant's spec
      -- (the campaign's own spec only when the tenant has none).
      local throttle = kumo.make_throttle(
        'queue-helper-tenant-campaign-overall_max_message_rate-' .. tenant .. '-' .. campaign,
        t.overall_max_message_rate or c.overall_max_message_rate)
      throttle:delay_message_if_throttled(msg)
    end
  end)

  kumo.on('validate_config', function()
    local failed = false
    local ok, data_or_err = pcall(load_data, file_names)
    if not ok then
      print('queue helper: ' .. tostring(data_or_err))
      failed = true
    end
    local ok_globs, files = pcall(kumo.eval_config_monitor_globs)
    if ok_globs then
      for _, f in ipairs(file_names) do
        if type(f) == 'string' and not monitored(f, files) then
          print(string.format(
            "queue helper: file '%s' is not covered by the config monitor globs; edits will not reach existing queues", f))
          failed = true
        end
      end
    end
    if ok then
      for _, p in ipairs(undefined_pools(data_or_err)) do
        print('queue helper: ' .. p)
        failed = true
      end
    end
    if not options.skip_queue_config_hook then
      local regs = kumo.get_event_registrars('get_queue_config')
      local last = regs[#regs]
      if last and not frames_mention(last, 'queue.lua') then
        print(string.format(
          'queue helper: policy-extras.queue must be the last get_queue_config handler; ' ..
          'the handler registered at %s is never called', tostring(last[1])))
        failed = true
      end
    end
    if failed then kumo.validation_failed() end
  end)

  mod.CONFIGURED = true
  return helper
end

function mod:setup(file_names)
  return mod:setup_with_options { file_names = file_names, skip_queue_config_hook = false }
end

return mod
