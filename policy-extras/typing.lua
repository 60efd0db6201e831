-- policy-extras.typing: small runtime types for validating helper data
-- (TOML/JSON files loaded by policy-extras.sources, listener_domains, ...).
--
-- Place on the path: policy, at load time of a helper's data files; never on
-- a per-message path. Written for kumo-edge from the behaviour described in
-- policy-extras.md ("Typed validation"); error texts follow upstream's wording
-- so operators see the same messages.
--
-- A type is a table with a `name` and `validate(self, value)` returning
-- `true` or `false, reason`. Calling a type validates (and, for records,
-- fills defaults in place) and returns the value, raising on error.

local mod = {}

local Type = {}
Type.__index = Type
Type.__tostring = function(t) return t.name end
Type.__call = function(t, value)
  local ok, err = t:validate(value)
  if not ok then error(err, 2) end
  return value
end

local function new_type(name, validate, extra)
  local t = extra or {}
  t.name = name
  t.validate = validate
  return setmetatable(t, Type)
end
mod.new_type = new_type

local function is_type(t) return getmetatable(t) == Type end
mod.is_type = is_type

local function show(v)
  if type(v) == 'string' then return v end
  return tostring(v)
end

-- Keys in a stable order (strings and numbers sort; others by tostring).
local function sorted_keys(tbl)
  local keys = {}
  for k in pairs(tbl) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta == tb and (ta == 'string' or ta == 'number') then return a < b end
    return tostring(a) < tostring(b)
  end)
  return keys
end
mod.sorted_keys = sorted_keys

local function scalar(lua_type, name)
  return new_type(name or lua_type, function(_, v)
    if type(v) == lua_type then return true end
    return false, string.format("Expected '%s', got '%s' %s", name or lua_type, type(v), show(v))
  end)
end

mod.string = scalar('string')
mod.number = scalar('number')
mod.boolean = scalar('boolean')
mod.table = scalar('table')
mod.Function = scalar('function')
mod.any = new_type('any', function() return true end)

--- option(T): nil, or a value of T.
function mod.option(t)
  return new_type('option<' .. t.name .. '>', function(_, v)
    if v == nil then return true end
    return t:validate(v)
  end, { optional = true, inner = t })
end

local function copy_default(v)
  if type(v) ~= 'table' then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy_default(x) end
  return out
end

--- default(T, value): like option(T); a record fills `value` in when absent.
function mod.default(t, value)
  return new_type(t.name, function(_, v)
    if v == nil then return true end
    return t:validate(v)
  end, { optional = true, inner = t, has_default = true, default_value = value })
end

--- enum(name, { 'A', 'B' }): one of the listed strings.
function mod.enum(name, values)
  local set = {}
  local quoted = {}
  for i, v in ipairs(values) do
    set[v] = true
    quoted[i] = "'" .. tostring(v) .. "'"
  end
  local expected = table.concat(quoted, ', ')
  return new_type(name, function(_, v)
    if set[v] then return true end
    return false, string.format("Unexpected '%s' value '%s', expected one of %s", name, show(v), expected)
  end, { values = values })
end

--- variant(T1, T2, ...): a value matching any of the types.
function mod.variant(...)
  local types = { ... }
  local names = {}
  for i, t in ipairs(types) do names[i] = t.name end
  local name = table.concat(names, '|')
  return new_type(name, function(_, v)
    local reasons = {}
    for i, t in ipairs(types) do
      local ok, err = t:validate(v)
      if ok then return true end
      reasons[i] = err
    end
    return false, string.format("value did not match any variant of '%s'\n%s", name, table.concat(reasons, '\n'))
  end, { types = types })
end

--- list(T): a sequence of T.
function mod.list(t)
  local name = 'list<' .. t.name .. '>'
  return new_type(name, function(_, v)
    if type(v) ~= 'table' then
      return false, string.format("Expected '%s', got '%s' %s", name, type(v), show(v))
    end
    local n = #v
    for k in pairs(v) do
      if math.type(k) ~= 'integer' or k < 1 or k > n then
        return false, string.format('%s: invalid key %s', name, show(k))
      end
    end
    for i = 1, n do
      local ok, err = t:validate(v[i])
      if not ok then return false, string.format('%s: invalid value for idx %d\n%s', name, i, err) end
    end
    return true
  end, { element = t })
end

--- map(K, V): a table whose keys are K and values V.
function mod.map(kt, vt)
  local name = 'map<' .. kt.name .. ',' .. vt.name .. '>'
  return new_type(name, function(_, v)
    if type(v) ~= 'table' then
      return false, string.format("Expected '%s', got '%s' %s", name, type(v), show(v))
    end
    for _, k in ipairs(sorted_keys(v)) do
      local ok, err = kt:validate(k)
      if not ok then return false, string.format('%s: invalid key %s\n%s', name, show(k), err) end
      ok, err = vt:validate(v[k])
      if not ok then
        return false, string.format("%s: invalid value for key '%s'\n%s", name, show(k), err)
      end
    end
    return true
  end, { key = kt, value = vt })
end

--- record(name, fields): a table with the given fields. `fields._dynamic`,
--- when present, is `function(key, value)` deciding keys that are not fields:
--- it returns nothing to accept, `'unknown'`, or `'invalid', reason`.
function mod.record(name, fields)
  local dynamic = fields._dynamic
  local spec = {}
  for k, t in pairs(fields) do
    if k ~= '_dynamic' then spec[k] = t end
  end
  return new_type(name, function(_, v)
    if type(v) ~= 'table' then
      return false, string.format("Expected '%s', got '%s' %s", name, type(v), show(v))
    end
    for _, k in ipairs(sorted_keys(v)) do
      local t = spec[k]
      if t then
        local ok, err = t:validate(v[k])
        if not ok then
          return false, string.format("%s: invalid value for field '%s'\n%s", name, show(k), err)
        end
      elseif dynamic and type(k) == 'string' then
        local verdict, reason = dynamic(k, v[k])
        if verdict == 'unknown' then
          return false, string.format("%s: unknown field '%s'", name, k)
        elseif verdict ~= nil then
          return false, string.format("%s: invalid value for field '%s'\n%s", name, k, tostring(reason))
        end
      else
        return false, string.format("%s: unknown field '%s'", name, show(k))
      end
    end
    for _, k in ipairs(sorted_keys(spec)) do
      local t = spec[k]
      if v[k] == nil then
        if t.has_default then
          v[k] = copy_default(t.default_value)
        elseif not t.optional then
          return false, string.format("%s: missing value for field '%s' of type '%s'", name, k, t.name)
        end
      end
    end
    return true
  end, { fields = spec, dynamic = dynamic })
end

--- The serde reason inside a constructor's error text:
--- `...deserialize error: <reason>, while processing {...}` → `<reason>`.
function mod.extract_deserialize_error(text)
  text = tostring(text)
  local reason = text:match('deserialize error: (.-), while processing .*$')
    or text:match('deserialize error: (.*)$')
  if reason then return reason end
  return (text:gsub('^[^%s:]+:%d+: ', ''))
end

--- A `_dynamic` validator backed by a `kumo.make_*` constructor: the pair is
--- tried as `ctor(base + {key=value})`. An "unknown field" complaint about the
--- key makes it unknown; any other failure is an invalid value.
function mod.constructor_validator(ctor, base)
  return function(key, value)
    local params = {}
    for k, v in pairs(base or {}) do params[k] = v end
    params[key] = value
    local ok, err = pcall(ctor, params)
    if ok then return nil end
    local reason = mod.extract_deserialize_error(err)
    if reason:find('unknown field `' .. key .. '`', 1, true) then return 'unknown' end
    return 'invalid', reason
  end
end

--- Self-test (upstream offers one per helper).
function mod:test()
  local R = mod.record('R', {
    s = mod.string,
    n = mod.option(mod.number),
    d = mod.default(mod.boolean, true),
    e = mod.option(mod.enum('Color', { 'Red', 'Green' })),
    l = mod.option(mod.list(mod.string)),
  })
  local r = R { s = 'x' }
  assert(r.d == true and r.n == nil)
  local function fails(t, v, expect)
    local ok, err = t:validate(v)
    assert(not ok, 'expected failure for ' .. tostring(v))
    assert(err == expect, 'got: ' .. tostring(err) .. '\nwanted: ' .. expect)
  end
  fails(R, { s = 1 }, "R: invalid value for field 's'\nExpected 'string', got 'number' 1")
  fails(R, { s = 'a', z = 1 }, "R: unknown field 'z'")
  fails(R, {}, "R: missing value for field 's' of type 'string'")
  fails(R, { s = 'a', e = 'Blue' },
    "R: invalid value for field 'e'\nUnexpected 'Color' value 'Blue', expected one of 'Red', 'Green'")
  fails(mod.list(mod.string), { 'a', 2 }, "list<string>: invalid value for idx 2\nExpected 'string', got 'number' 2")
  fails(mod.map(mod.string, mod.number), { a = 'x' },
    "map<string,number>: invalid value for key 'a'\nExpected 'number', got 'string' x")
  return true
end

return mod
