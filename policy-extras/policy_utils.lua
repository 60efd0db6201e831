-- policy-extras.policy_utils: small table/string helpers shared by the
-- policy-extras modules and available to operators' policies.
--
-- Place on the path: policy, mostly at data-load time. Written for kumo-edge
-- from the surface listed in policy-extras.md §5. Pure Lua; never does I/O
-- except `load_json_or_toml_file`.

local kumo = require 'kumo'

local mod = {}

local function sorted_keys(tbl)
  local keys = {}
  for k in pairs(tbl) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta == tb and (ta == 'string' or ta == 'number') then return a < b end
    if ta ~= tb then return ta < tb end
    return tostring(a) < tostring(b)
  end)
  return keys
end

--- Deep equality: tables are equal when they hold equal values under the
--- same keys; everything else compares with `==`.
function mod.equals(a, b)
  if a == b then return true end
  if type(a) ~= 'table' or type(b) ~= 'table' then return false end
  for k, v in pairs(a) do
    if not mod.equals(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

--- A readable, deterministic rendering of a Lua value (keys sorted).
function mod.dumps(value, indent)
  indent = indent or ''
  local t = type(value)
  if t == 'string' then return string.format('%q', value) end
  if t ~= 'table' then return tostring(value) end
  local mt = getmetatable(value)
  if mt and mt.__tostring then return tostring(value) end
  local keys = sorted_keys(value)
  if #keys == 0 then return '{}' end
  local inner = indent .. '  '
  local parts = {}
  local n = #value
  for _, k in ipairs(keys) do
    local key
    if math.type(k) == 'integer' and k >= 1 and k <= n then
      key = ''
    elseif type(k) == 'string' and k:match('^[%a_][%w_]*$') then
      key = k .. ' = '
    else
      key = '[' .. mod.dumps(k) .. '] = '
    end
    parts[#parts + 1] = inner .. key .. mod.dumps(value[k], inner)
  end
  return '{\n' .. table.concat(parts, ',\n') .. ',\n' .. indent .. '}'
end

--- Raise unless `a` equals `b` (deep comparison).
function mod.assert_eq(a, b, message)
  if not mod.equals(a, b) then
    error(string.format('assert_eq failed%s:\n%s\n!=\n%s',
      message and (' (' .. tostring(message) .. ')') or '', mod.dumps(a), mod.dumps(b)), 2)
  end
end

--- Raise if `a` equals `b` (deep comparison).
function mod.assert_ne(a, b, message)
  if mod.equals(a, b) then
    error(string.format('assert_ne failed%s: both are\n%s',
      message and (' (' .. tostring(message) .. ')') or '', mod.dumps(a)), 2)
  end
end

--- Raise unless the string `value` matches the Lua pattern `pattern`.
function mod.assert_matches(value, pattern, message)
  if type(value) ~= 'string' or not value:find(pattern) then
    error(string.format("assert_matches failed%s: %s does not match pattern '%s'",
      message and (' (' .. tostring(message) .. ')') or '', mod.dumps(value), pattern), 2)
  end
end

--- Shallow merge: copy every key of `src` into `dest`; returns `dest`.
function mod.merge_into(src, dest)
  if src == nil then return dest end
  for k, v in pairs(src) do dest[k] = v end
  return dest
end

--- Deep merge: nested tables present in both are merged key by key; other
--- values of `src` replace those of `dest`. Returns `dest`.
function mod.recursive_merge_into(src, dest)
  if src == nil then return dest end
  for k, v in pairs(src) do
    if type(v) == 'table' and type(dest[k]) == 'table' and getmetatable(v) == nil then
      mod.recursive_merge_into(v, dest[k])
    elseif type(v) == 'table' and getmetatable(v) == nil then
      dest[k] = mod.recursive_merge_into(v, {})
    else
      dest[k] = v
    end
  end
  return dest
end

--- Whether `tbl` holds `value` (deep comparison) under any key.
function mod.table_contains(tbl, value)
  for _, v in pairs(tbl or {}) do
    if mod.equals(v, value) then return true end
  end
  return false
end

--- The keys of `tbl` as a list (sorted when they are comparable).
function mod.table_keys(tbl)
  return sorted_keys(tbl or {})
end

--- Whether `tbl` is nil or has no keys.
function mod.table_is_empty(tbl)
  return tbl == nil or next(tbl) == nil
end

--- Whether string `s` begins with `prefix`.
function mod.starts_with(s, prefix)
  return s:sub(1, #prefix) == prefix
end

--- Whether string `s` ends with `suffix`.
function mod.ends_with(s, suffix)
  return suffix == '' or s:sub(-#suffix) == suffix
end

--- Data from a helper file: a table is returned as it is; a path ending in
--- `.toml` is read with `kumo.toml_load`, anything else with `kumo.json_load`.
function mod.load_json_or_toml_file(name_or_table)
  if type(name_or_table) == 'table' then return name_or_table end
  if type(name_or_table) ~= 'string' then
    error('load_json_or_toml_file: expected a file name or a table, got ' .. type(name_or_table), 2)
  end
  if mod.ends_with(name_or_table, '.toml') then return kumo.toml_load(name_or_table) end
  return kumo.json_load(name_or_table)
end

--- Split `'ip:port'` or `'[v6]:port'` into ip and port (a number); a bare
--- address gives the address and nil.
function mod.split_ip_port(text)
  local ip, port = text:match('^%[(.*)%]:(%d+)$')
  if ip then return ip, tonumber(port) end
  ip, port = text:match('^([^:]*):(%d+)$')
  if ip then return ip, tonumber(port) end
  ip = text:match('^%[(.*)%]$')
  return ip or text, nil
end

--- Self-test (upstream offers one per helper).
function mod:test()
  mod.assert_eq({ a = { 1, 2 } }, { a = { 1, 2 } })
  mod.assert_ne({ a = 1 }, { a = 2 })
  local ip, port = mod.split_ip_port('[::1]:25')
  mod.assert_eq({ ip, port }, { '::1', 25 })
  ip, port = mod.split_ip_port('10.0.0.1:2025')
  mod.assert_eq({ ip, port }, { '10.0.0.1', 2025 })
  mod.assert_eq(mod.recursive_merge_into({ a = { b = 2 } }, { a = { c = 3 }, d = 4 }),
    { a = { b = 2, c = 3 }, d = 4 })
  mod.assert_eq(mod.table_keys({ b = 1, a = 2 }), { 'a', 'b' })
  assert(mod.starts_with('hello', 'he') and mod.ends_with('hello', 'lo'))
  assert(mod.table_contains({ 'x', 'y' }, 'y') and not mod.table_contains({}, 'y'))
  assert(mod.table_is_empty({}) and not mod.table_is_empty({ 1 }))
  mod.assert_matches('hello world', '^hello')
  return true
end

return mod
