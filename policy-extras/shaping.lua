--[[
policy-extras.shaping: egress path configuration (get_egress_path_config)
from shaping TOML/JSON files. kumo-edge's own implementation of the helper
described in policy-extras.md section 4.

Place on the mail's path: delivery. A ready queue asks
get_egress_path_config(routing_domain, source, site_name); this helper
answers from the merged shaping files, loaded by kumo.shaping.load (host
side: MX roll-up, providers, validation) and memoized as 'shaping_data'.

Usage:
  local shaping = require 'policy-extras.shaping'
  kumo.on('get_egress_path_config', shaping:setup { '/opt/kumomta/etc/shaping.toml' })

Automation rules are parsed and validated but not executed (that needs TSA,
which kumo-edge does not provide); publish/subscribe are accepted, subscribe
URLs are loaded as extra shaping sources.
]]
local kumo = require 'kumo'

local mod = { CONFIGURED = false }

local DEFAULT_FILE = '/opt/kumomta/share/policy-extras/shaping.toml'

local SETUP_OPTIONS = {
  extra_files = true, no_default_files = true, publish = true, subscribe = true,
  cache_ttl = true, load_validation_options = true, validation_options = true,
  pre_filter = true, skip_log_record_types = true, additional_skip_log_record_types = true,
  tsa_queue_config = true, back_pressure = true, publish_timeout = true,
  shaping_data_populate_timeout = true, retry_shaping_data_fetch_on_populate_timeout = true,
  allow_stale_shaping_data = true,
}

local VALIDATION_DEFAULTS = {
  aliased_site = 'Warn', dns_fail = 'Warn', null_mx = 'Warn', provider_overlap = 'Warn',
  local_load = 'Error', remote_load = 'Ignore', skip_remote = true,
}

-- A loaded shaping data handle with upstream's method names.
local Data = {}
Data.__index = Data
function Data:get_egress_path_config(routing_domain, egress_source, site_name)
  return kumo.shaping.get_egress_path_config(self.handle, routing_domain, egress_source, site_name)
end
function Data:get_errors() return kumo.shaping.get_errors(self.handle) end
function Data:get_warnings() return kumo.shaping.get_warnings(self.handle) end
function Data:get_referenced_sources() return kumo.shaping.get_referenced_sources(self.handle) end
local function wrap(handle) return setmetatable({ handle = handle }, Data) end

local function list_of(v, what)
  if v == nil then return {} end
  if type(v) == 'string' then return { v } end
  if type(v) ~= 'table' then error(string.format('shaping: %s must be a list of strings', what), 3) end
  for i, x in ipairs(v) do
    if type(x) ~= 'string' then
      error(string.format('shaping: %s[%d] must be a string, got %s', what, i, type(x)), 3)
    end
  end
  return v
end

local function trim_slash(url) return (url:gsub('/+$', '')) end

-- Loads without the memoize cache; logs what the loader collected.
local function load_uncached(files, options)
  local handle = kumo.shaping.load(files, options)
  for _, e in ipairs(kumo.shaping.get_errors(handle)) do kumo.log_error('shaping:', e) end
  for _, w in ipairs(kumo.shaping.get_warnings(handle)) do kumo.log_warn('shaping:', w) end
  return handle
end

function mod:setup_with_automation(options)
  if mod.CONFIGURED then error('shaping module has already been configured', 2) end
  options = options or {}
  if type(options) ~= 'table' then error('shaping:setup_with_automation: options must be a table', 2) end
  for k in pairs(options) do
    if not SETUP_OPTIONS[k] then error(string.format("ShapingSetupOptions: unknown field '%s'", tostring(k)), 2) end
  end

  local files = {}
  if not options.no_default_files then files[#files + 1] = DEFAULT_FILE end
  for _, f in ipairs(list_of(options.extra_files, 'extra_files')) do files[#files + 1] = f end
  local publish = list_of(options.publish, 'publish')
  for _, url in ipairs(list_of(options.subscribe, 'subscribe')) do
    files[#files + 1] = trim_slash(url) .. '/get_config_v1/shaping.toml'
  end
  local load_options = options.load_validation_options

  local cached = kumo.memoize(load_uncached, {
    name = 'shaping_data',
    ttl = options.cache_ttl or '1 minute',
    capacity = 4,
    invalidate_with_epoch = true,
  })

  local function load_shaping_data()
    return wrap(cached(files, load_options))
  end

  local function get_egress_path_config(routing_domain, egress_source, site_name)
    local handle = cached(files, load_options)
    local params = kumo.shaping.get_egress_path_config(handle, routing_domain, egress_source, site_name)
    if params.refresh_strategy == nil then params.refresh_strategy = 'Epoch' end
    return kumo.make_egress_path(params)
  end

  -- Upstream answers get_queue_config for its TSA publish queues only and
  -- filters its own log records; without TSA both pass everything on.
  kumo.on('get_queue_config', function(domain, tenant, campaign, routing_domain) end)
  kumo.on('should_enqueue_log_record', function(msg, hook_name) end)

  kumo.on('validate_config', function()
    local vopts = {}
    for k, v in pairs(VALIDATION_DEFAULTS) do vopts[k] = v end
    for k, v in pairs(options.validation_options or {}) do vopts[k] = v end
    local ok, handle = pcall(kumo.shaping.load, files, vopts)
    if not ok then
      print('shaping: ' .. tostring(handle))
      kumo.validation_failed()
      return
    end
    local errors = kumo.shaping.get_errors(handle)
    for _, e in ipairs(errors) do print('shaping error: ' .. e) end
    for _, w in ipairs(kumo.shaping.get_warnings(handle)) do print('shaping warning: ' .. w) end
    local failed = #errors > 0
    -- Sources named by the operator's shaping blocks must exist in the
    -- sources helper (only checked when the policy uses it). The bundled
    -- default file's sample source ("my source name") is not checked.
    local sources_mod = package.loaded['policy-extras.sources']
    if type(sources_mod) == 'table' and sources_mod.CONFIGURED then
      local ok_s, sdata = pcall(sources_mod.load_data, sources_mod.CONFIGURED.data_files)
      local own = handle
      if ok_s and files[1] == DEFAULT_FILE then
        local own_files = { table.unpack(files, 2) }
        local ok_own, h = pcall(kumo.shaping.load, own_files, vopts)
        own = ok_own and h or nil
      end
      if ok_s and own then
        for _, name in ipairs(kumo.shaping.get_referenced_sources(own)) do
          if sdata.raw.sources[name] == nil then
            print(string.format(
              "shaping error: source '%s' is named in the shaping data but is not defined by the sources helper", name))
            failed = true
          end
        end
      end
    end
    if failed then kumo.validation_failed() end
  end)

  local warned = false
  local function setup_publish()
    if #publish > 0 and not warned then
      warned = true
      kumo.log_warn('shaping: publishing to TSA is not supported by kumo-edge; ignoring publish URLs')
    end
  end

  mod.CONFIGURED = true
  return {
    get_egress_path_config = get_egress_path_config,
    setup_publish = setup_publish,
    load_shaping_data = load_shaping_data,
    files = files,
  }
end

function mod:setup(extra_files, options)
  local opts = {}
  for k, v in pairs(options or {}) do opts[k] = v end
  opts.extra_files = extra_files
  return mod:setup_with_automation(opts).get_egress_path_config
end

-- Loads shaping files directly (no memoize), e.g. for tests or tooling.
function mod.load(files, options)
  return wrap(load_uncached(files, options))
end

return mod
