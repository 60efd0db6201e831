-- policy-extras.listener_domains: relay / OOB / FBL rules per recipient or
-- sender domain, from TOML/JSON files.
--
--   local listener_domains = require 'policy-extras.listener_domains'
--   kumo.on('get_listener_domain', listener_domains:setup { '/opt/kumomta/etc/listener_domains.toml' })
--
-- Place on the path: reception, at RCPT TO (the server asks for the
-- recipient's and the sender's domain). Written for kumo-edge from
-- policy-extras.md §2. Top-level keys are domain patterns (exact,
-- `*.suffix`, or `*`); `[listener."ip:port"."pattern"]` applies only to
-- connections arriving on that local address. Options are those of
-- `kumo.make_listener_domain` plus `relay_from_authz`. Lookup order, first
-- hit wins (no merging across levels): this listener's patterns, this
-- listener's `*`, the global patterns, the global `*`.

local kumo = require 'kumo'
local typing = require 'policy-extras.typing'
local utils = require 'policy-extras.policy_utils'

local mod = {}

local ListenerConfig = typing.record('ListenerConfig', {
  relay_from_authz = typing.option(typing.list(typing.string)),
  _dynamic = typing.constructor_validator(kumo.make_listener_domain, {}),
})
local DomainMap = typing.map(typing.string, ListenerConfig)
mod.ListenerConfig = ListenerConfig

local function describe(item)
  if type(item) == 'string' then return '"' .. item .. '"' end
  return 'inline table'
end

local function check_file(data)
  if type(data) ~= 'table' then
    return false, string.format("Expected 'table', got '%s' %s", type(data), tostring(data))
  end
  for _, k in ipairs(typing.sorted_keys(data)) do
    local v = data[k]
    if k == 'listener' then
      local ok, err = typing.map(typing.string, DomainMap):validate(v)
      if not ok then return false, "invalid value for 'listener'\n" .. err end
    else
      local ok, err = ListenerConfig:validate(v)
      if not ok then return false, string.format("invalid value for domain '%s'\n%s", tostring(k), err) end
    end
  end
  return true
end

-- Merged options keyed by listener ('*' = every listener) then domain pattern.
local function load_raw(file_names)
  if type(file_names) ~= 'table' then
    error('listener_domains:setup: expected a list of file names or tables, got ' .. type(file_names))
  end
  local by_listener = { ['*'] = {} }
  local function merge(listener, pattern, options)
    local domains = by_listener[listener] or {}
    by_listener[listener] = domains
    local merged = domains[pattern] or {}
    for k, v in pairs(options) do merged[k] = v end
    domains[pattern] = merged
  end
  for _, item in ipairs(file_names) do
    local ok, data = pcall(utils.load_json_or_toml_file, item)
    if not ok then
      error(string.format('policy-extras.listener_domains: cannot load %s: %s', describe(item), tostring(data)), 0)
    end
    local valid, err = check_file(data)
    if not valid then
      error(string.format('policy-extras.listener_domains: invalid data in %s: %s', describe(item), err), 0)
    end
    for pattern, options in pairs(data) do
      if pattern == 'listener' then
        for listener, domains in pairs(options) do
          for p, o in pairs(domains) do merge(listener, p, o) end
        end
      else
        merge('*', pattern, options)
      end
    end
  end
  return by_listener
end

-- One compiled entry: the listener domain object, plus the raw options and
-- the authz set when relay_from_authz needs a per-session object.
local function compile_entry(options)
  local params = {}
  local authz
  for k, v in pairs(options) do
    if k == 'relay_from_authz' then
      authz = {}
      for _, id in ipairs(v) do authz[id] = true end
    else
      params[k] = v
    end
  end
  local ok, obj = pcall(kumo.make_listener_domain, params)
  if not ok then
    error('ListenerConfig: ' .. typing.extract_deserialize_error(obj), 0)
  end
  return { object = obj, params = params, authz = authz }
end

local function load_data(file_names)
  local out = {}
  for listener, domains in pairs(load_raw(file_names)) do
    local exact = {}
    local catch_all
    for pattern, options in pairs(domains) do
      local entry = compile_entry(options)
      if pattern == '*' then catch_all = entry else exact[pattern] = entry end
    end
    out[listener] = { map = kumo.domain_map.new(exact), catch_all = catch_all }
  end
  return out
end
mod.load_data = load_data

local function lookup(data, domain, listener)
  local level = listener and data[listener]
  if level then
    local hit = level.map[domain]
    if hit ~= nil then return hit end
    if level.catch_all then return level.catch_all end
  end
  local global = data['*']
  local hit = global.map[domain]
  if hit ~= nil then return hit end
  return global.catch_all
end
mod.lookup = lookup

--- Returns the `get_listener_domain` handler answering from `file_names`.
function mod:setup(file_names)
  if mod.CONFIGURED then error('listener_domains module has already been configured', 2) end

  local cached_load_data = kumo.memoize(load_data, {
    name = 'listener_domains_data',
    ttl = '5 minutes',
    capacity = 10,
    invalidate_with_epoch = true,
  })
  local checked_once = kumo.memoize(function(files)
    load_data(files)
    return true
  end, { name = 'listener_domains_data_checked', ttl = '100 years', capacity = 10 })
  local ok, err = pcall(checked_once, file_names)
  if not ok then error(tostring(err), 2) end

  kumo.on('validate_config', function()
    local ok2, e = pcall(load_data, file_names)
    if not ok2 then
      print(tostring(e))
      kumo.validation_failed()
    end
  end)

  mod.CONFIGURED = { data_files = file_names }

  return function(domain, listener, conn_meta)
    local data = cached_load_data(file_names)
    local entry = lookup(data, domain, listener)
    if entry == nil then return nil end
    if entry.authz and conn_meta then
      local authz_id = conn_meta:get_meta('authz_id')
      if authz_id ~= nil and entry.authz[authz_id] then
        local peer = utils.split_ip_port(conn_meta:get_meta('received_from') or '')
        local params = {}
        for k, v in pairs(entry.params) do params[k] = v end
        params.relay_from = { peer }
        return kumo.make_listener_domain(params)
      end
    end
    return entry.object
  end
end

return mod
