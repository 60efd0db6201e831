-- policy-extras.sources: egress sources and pools from TOML/JSON files.
--
--   local sources = require 'policy-extras.sources'
--   sources:setup { '/opt/kumomta/etc/sources.toml' }
--
-- Place on the path: policy, between the scheduled queue and the ready
-- queue: it answers `get_egress_source` and `get_egress_pool`. Written for
-- kumo-edge from policy-extras.md §1. Data files hold `[source."name"]`
-- tables (any `kumo.make_egress_source` option) and `[pool."pool"."source"]`
-- entries (only `weight`). Later files override a source's keys one by one
-- and append pool entries. The data is checked when `setup` first runs (a
-- bad file stops start-up with the file and key) and cached with
-- `kumo.memoize` (5 minutes, reloaded on a config epoch bump).

local kumo = require 'kumo'
local typing = require 'policy-extras.typing'
local utils = require 'policy-extras.policy_utils'

local mod = {}

local Source = typing.record('EgressSource', {
  _dynamic = typing.constructor_validator(kumo.make_egress_source, { name = 'policy-extras.sources' }),
})
local PoolEntry = typing.record('PoolEntry', {
  weight = typing.option(typing.number),
})
local Pool = typing.map(typing.string, PoolEntry)
local SourcesHelperConfig = typing.record('SourcesHelperConfig', {
  source = typing.option(typing.map(typing.string, Source)),
  pool = typing.option(typing.map(typing.string, Pool)),
})
mod.SourcesHelperConfig = SourcesHelperConfig

local function describe(item)
  if type(item) == 'string' then return '"' .. item .. '"' end
  return 'inline table'
end

-- Read and check every file, then merge: returns the merged plain data
-- { sources = { name = params }, pools = { name = { {name=, weight=}... } } }.
local function load_raw(file_names)
  if type(file_names) ~= 'table' then
    error('sources:setup: expected a list of file names or tables, got ' .. type(file_names))
  end
  local sources, pools = {}, {}
  for _, item in ipairs(file_names) do
    local ok, data = pcall(utils.load_json_or_toml_file, item)
    if not ok then
      error(string.format('policy-extras.sources: cannot load %s: %s', describe(item), tostring(data)), 0)
    end
    local valid, err = SourcesHelperConfig:validate(data)
    if not valid then
      error(string.format('policy-extras.sources: invalid data in %s: %s', describe(item), err), 0)
    end
    for name, params in pairs(data.source or {}) do
      local merged = sources[name] or {}
      for k, v in pairs(params) do merged[k] = v end
      sources[name] = merged
    end
    for pool_name, entries in pairs(data.pool or {}) do
      local list = pools[pool_name] or {}
      -- pairs() order is unspecified upstream; sort by source name so the
      -- weighted round robin sequence is reproducible.
      for _, source_name in ipairs(typing.sorted_keys(entries)) do
        list[#list + 1] = { name = source_name, weight = entries[source_name].weight }
      end
      pools[pool_name] = list
    end
  end
  return { sources = sources, pools = pools }
end

-- Build the config objects from the merged data.
local function load_data(file_names)
  local raw = load_raw(file_names)
  local out = { sources = {}, pools = {}, raw = raw }
  for name, params in pairs(raw.sources) do
    local p = { name = name }
    for k, v in pairs(params) do p[k] = v end
    local ok, obj = pcall(kumo.make_egress_source, p)
    if not ok then
      error(string.format("policy-extras.sources: invalid source '%s': %s", name,
        typing.extract_deserialize_error(obj)), 0)
    end
    out.sources[name] = obj
  end
  for name, entries in pairs(raw.pools) do
    local ok, obj = pcall(kumo.make_egress_pool, { name = name, entries = entries })
    if not ok then
      error(string.format("policy-extras.sources: invalid pool '%s': %s", name,
        typing.extract_deserialize_error(obj)), 0)
    end
    out.pools[name] = obj
  end
  return out
end
mod.load_data = load_data

--- Problems that do not stop loading: pools naming undefined sources.
function mod.check(data)
  local problems = {}
  for _, pool_name in ipairs(typing.sorted_keys(data.raw.pools)) do
    for _, entry in ipairs(data.raw.pools[pool_name]) do
      if data.raw.sources[entry.name] == nil then
        problems[#problems + 1] = string.format("pool '%s' references source '%s' which is not defined",
          pool_name, entry.name)
      end
    end
  end
  return problems
end

--- Register `get_egress_source` and `get_egress_pool` answered from `file_names`.
function mod:setup(file_names)
  if mod.CONFIGURED then error('sources module has already been configured', 2) end

  local cached_load_data = kumo.memoize(load_data, {
    name = 'sources_data',
    ttl = '5 minutes',
    capacity = 10,
    invalidate_with_epoch = true,
  })

  -- Checked once per process (every Lua context re-runs the policy): a bad
  -- file at start-up is fatal; later edits behave as lookups failing.
  local checked_once = kumo.memoize(function(files)
    local data = load_data(files)
    for _, p in ipairs(mod.check(data)) do kumo.log_warn('policy-extras.sources: ' .. p) end
    return true
  end, { name = 'sources_data_checked', ttl = '100 years', capacity = 10 })
  local ok, err = pcall(checked_once, file_names)
  if not ok then error(tostring(err), 2) end

  kumo.on('get_egress_source', function(source_name)
    local data = cached_load_data(file_names)
    local source = data.sources[source_name]
    if source == nil then
      error(string.format("policy-extras.sources: egress source '%s' is not defined", source_name), 0)
    end
    return source
  end)

  kumo.on('get_egress_pool', function(pool_name)
    local data = cached_load_data(file_names)
    local pool = data.pools[pool_name]
    if pool == nil then
      error(string.format("policy-extras.sources: egress pool '%s' is not defined", pool_name), 0)
    end
    return pool
  end)

  kumo.on('validate_config', function()
    local ok2, data = pcall(load_data, file_names)
    if not ok2 then
      print(tostring(data))
      kumo.validation_failed()
      return
    end
    local problems = mod.check(data)
    for _, p in ipairs(problems) do print(p) end
    if #problems > 0 then kumo.validation_failed() end
  end)

  mod.CONFIGURED = { data_files = file_names }
end

return mod
