/**
 * The Lua half of the `kumo` module, run once in every Lua context before
 * the operator's policy file.
 *
 * Place on the path: policy. The JS host functions (`__host`, built in
 * host_functions.ts) do the work; this chunk gives them KumoMTA's Lua shape:
 * `kumo.on` registration rules, the dispatcher the engine calls per event,
 * `kumo.reject`, wrappers for Message / conn_meta / config objects, error
 * positions (`file:line:`), and `require` of modules on disk.
 *
 * Kept in Lua because these pieces are per-context state (handler tables,
 * metatables) and calling Lua from Lua is far cheaper than crossing into JS.
 * It must never hold state that should be shared across contexts: that lives
 * in JS (memoize caches, config epoch).
 *
 * @module
 */

/** Lua source of the prelude; called with the host table as its only argument. */
export const PRELUDE_LUA = String.raw`
local H = ...
local kumo = {}
package.loaded.kumo = kumo
kumo.version = H.version
_G.kumo = kumo

-- Lua seeds math.random from the clock and an address, which inside WASM
-- repeats across contexts and runs: seed each context from the OS instead.
math.randomseed(H.random_seed())

local pack, unpack, type, error, pcall, xpcall, setmetatable, getmetatable, tostring, select =
  table.pack, table.unpack, type, error, pcall, xpcall, setmetatable, getmetatable, tostring, select

-- A JS host error arrives as a userdata whose tostring is its message; rethrow
-- as a string at the caller's level so the operator sees file:line.
local function rethrow(err, level)
  if type(err) == 'table' and getmetatable(err) and getmetatable(err).__kumo_reject then
    error(err, 0)
  end
  error(tostring(err), level + 1)
end

-- wrap a synchronous host function
local function hw(f)
  return function(...)
    local r = pack(pcall(f, ...))
    if r[1] then return unpack(r, 2, r.n) end
    rethrow(r[2], 2)
  end
end

-- wrap an asynchronous host function (returns a JS promise)
local function ha(f)
  return function(...)
    local ok, p = pcall(f, ...)
    if not ok then rethrow(p, 2) end
    local ok2, v = pcall(p.await, p)
    if not ok2 then rethrow(v, 2) end
    return v
  end
end
kumo.__hw = hw
kumo.__ha = ha

---------------------------------------------------------------------------
-- Value wrappers

local AddrMT = {}
AddrMT.__index = AddrMT
AddrMT.__tostring = function(a) return a.email end
AddrMT.__eq = function(a, b) return a.email == b.email end
local function wrap_addr(t)
  if t == nil then return nil end
  return setmetatable(t, AddrMT)
end
kumo.__wrap_addr = wrap_addr

local function wrap_addr_list(list)
  if list == nil then return {} end
  for i = 1, #list do setmetatable(list[i], AddrMT) end
  return list
end

-- Turn an address argument (string, EnvelopeAddress, or array of either)
-- into what the host expects: strings.
local function addr_arg(a)
  if type(a) == 'table' then
    if getmetatable(a) == AddrMT then return a.email end
    local out = {}
    for i = 1, #a do out[i] = addr_arg(a[i]) end
    return out
  end
  return a
end

-- An AddressHeader list entry prints as upstream's {"name":...,"address":...}.
local AddrEntryMT = {}
AddrEntryMT.__tostring = function(e)
  return '{"name":' .. (e.name == nil and 'null' or H.json_encode(e.name))
    .. ',"address":' .. H.json_encode(e.email) .. '}'
end

local ConfigMT = { __kumo_ud = true, __kumo_kind = 'g' }
ConfigMT.__index = function(t, k) return H.cfg_get(rawget(t, 1), k) end
ConfigMT.__pairs = function(t)
  local view = H.cfg_view(rawget(t, 1))
  return next, view, nil
end
ConfigMT.__tostring = function(t) return H.cfg_json(rawget(t, 1)) end
ConfigMT.__newindex = function() error('config objects are read-only', 2) end
local function wrap_cfg(ud) return setmetatable({ ud }, ConfigMT) end
kumo.__wrap_cfg = wrap_cfg

-- msg:* calls. A method that needs the body of a shrunk message
-- (msg:shrink_data()) fails with "data is not loaded": load it back from the
-- data spool and try once more (only that path pays for the check).
local msg_call_raw = H.msg_call
local function msg_call(ud, name, ...)
  local r = pack(pcall(msg_call_raw, ud, name, ...))
  if r[1] then return unpack(r, 2, r.n) end
  if tostring(r[2]):find('data is not loaded', 1, true) then
    kumo.__msg_async(ud, '__load_data')
    r = pack(pcall(msg_call_raw, ud, name, ...))
    if r[1] then return unpack(r, 2, r.n) end
  end
  rethrow(r[2], 2)
end
local Message = { __kumo_ud = true, __kumo_kind = 'm' }
local MessageMethods = {}
Message.__index = MessageMethods
Message.__tostring = function(m) return 'Message(' .. msg_call(rawget(m, 1), 'id') .. ')' end
setmetatable(MessageMethods, {
  __index = function(t, name)
    local f = function(self, ...)
      if type(self) ~= 'table' or getmetatable(self) ~= Message then
        error('msg:' .. name .. ': call it as a method (msg:' .. name .. '(...))', 2)
      end
      -- exactly one value: a missing one is nil, not "no value" (tostring(msg:get_meta('x')))
      return (msg_call(rawget(self, 1), name, ...))
    end
    rawset(t, name, f)
    return f
  end,
})
function MessageMethods:sender() return wrap_addr(msg_call(rawget(self, 1), 'sender')) end
function MessageMethods:recipient_list() return wrap_addr_list(msg_call(rawget(self, 1), 'recipient_list')) end
function MessageMethods:recipient()
  local list = wrap_addr_list(msg_call(rawget(self, 1), 'recipient_list'))
  if #list == 0 then return nil end
  if #list == 1 then return list[1] end
  return list
end
function MessageMethods:set_sender(a) return msg_call(rawget(self, 1), 'set_sender', addr_arg(a)) end
function MessageMethods:set_recipient(a) return msg_call(rawget(self, 1), 'set_recipient', addr_arg(a)) end
-- AddressHeader: list (every mailbox, groups flattened), tostring() =
-- upstream's JSON, and user/domain/email/name only for one plain mailbox.
local ADDR_FIELDS = { user = true, domain = true, email = true, name = true }
local function addr_header(self, name)
  local h = msg_call(rawget(self, 1), 'get_address_header', name)
  if h == nil then return nil end
  local list, json, problem = h.list or {}, h.json, h.problem
  for i = 1, #list do setmetatable(list[i], AddrEntryMT) end
  return setmetatable({}, {
    __tostring = function() return json end,
    __index = function(_, k)
      if k == 'list' then return list end
      if not ADDR_FIELDS[k] then return nil end
      if problem ~= nil then
        error('Cannot read AddressHeader field "' .. tostring(k) .. '": ' .. problem, 2)
      end
      return list[1][k]
    end,
  })
end
function MessageMethods:get_address_header(name) return addr_header(self, name) end
function MessageMethods:from_header() return addr_header(self, 'From') end
function MessageMethods:to_header() return addr_header(self, 'To') end
-- Methods with an asynchronous host side, awaited through kumo.__msg_async.
function MessageMethods:dkim_sign(signer)
  if type(signer) ~= 'table' then error('msg:dkim_sign: expected a signer from kumo.dkim.*_signer', 2) end
  return kumo.__msg_async(rawget(self, 1), 'dkim_sign', rawget(signer, 1))
end
function MessageMethods:parse_rfc3464() return kumo.__msg_async(rawget(self, 1), 'parse_rfc3464') end
function MessageMethods:parse_rfc5965() return kumo.__msg_async(rawget(self, 1), 'parse_rfc5965') end
function MessageMethods:save() kumo.__msg_async(rawget(self, 1), 'save') end
function MessageMethods:dkim_verify(resolver) return kumo.__msg_async(rawget(self, 1), 'dkim_verify', resolver) end
function MessageMethods:shrink() kumo.__msg_async(rawget(self, 1), 'shrink') end
function MessageMethods:shrink_data() kumo.__msg_async(rawget(self, 1), 'shrink_data') end
local function wrap_msg(ud) return setmetatable({ ud }, Message) end
kumo.__wrap_msg = wrap_msg

local conn_call = hw(H.conn_call)
local ConnMeta = { __kumo_ud = true, __kumo_kind = 'c' }
ConnMeta.__index = {
  get_meta = function(self, k) return (conn_call(rawget(self, 1), 'get_meta', k)) end,
  set_meta = function(self, k, v) return conn_call(rawget(self, 1), 'set_meta', k, v) end,
  auth_info = function(self) return conn_call(rawget(self, 1), 'auth_info') end,
}
local function wrap_conn(ud) return setmetatable({ ud }, ConnMeta) end

local WRAPPERS = { m = wrap_msg, c = wrap_conn, a = wrap_addr, g = wrap_cfg }

-- Unwrap a handler's return value for the host: wrapped host objects go back
-- as the JS object they wrap.
local function unwrap(v)
  if type(v) == 'table' then
    local mt = getmetatable(v)
    if mt and mt.__kumo_ud then return rawget(v, 1) end
  end
  return v
end

---------------------------------------------------------------------------
-- Events

local MULTI = {
  pre_init = true, validate_config = true, get_queue_config = true,
  throttle_insert_ready_queue = true, requeue_message = true,
  should_enqueue_log_record = true, get_acl_definition = true,
}
local handlers = {}
local current_event = nil

local function caller_where(level)
  local info = debug.getinfo(level + 1, 'Sl')
  if not info then return '?' end
  local src = info.source
  if src:sub(1, 1) == '@' then src = src:sub(2) else src = info.short_src end
  return src .. ':' .. tostring(info.currentline)
end

function kumo.on(name, fn)
  if type(name) ~= 'string' then error('kumo.on: event name must be a string', 2) end
  if type(fn) ~= 'function' then error("kumo.on('" .. name .. "', ...): handler must be a function", 2) end
  if current_event ~= nil and current_event ~= 'main' then
    error(string.format(
      "Attempting to register an event handler via \x60kumo.on('%s', ...)\x60 from within the event handler '%s'. "
      .. "You must move your event handler registration so that it is setup directly when the policy is loaded "
      .. "in order for it to consistently trigger and handle events.", name, current_event), 2)
  end
  local where = caller_where(2)
  local list = handlers[name]
  if list == nil then
    list = {}
    handlers[name] = list
  elseif not MULTI[name] then
    error(string.format('%s event already has a handler defined at %s', name, list[1].where), 2)
  end
  list[#list + 1] = { fn = fn, where = where, stack = debug.traceback('', 2) }
end

function kumo.get_event_registrars(name)
  local out = {}
  for i, h in ipairs(handlers[name] or {}) do
    local frames = {}
    for line in h.stack:gmatch('\n%s*([^\n]+)') do
      local loc = line:match('^([^:]+:%d+):')
      if loc then frames[#frames + 1] = loc end
    end
    out[i] = frames
  end
  return out
end

local RejectMT = { __kumo_reject = true }
RejectMT.__tostring = function(r) return tostring(r.code) .. ' ' .. tostring(r.message) end
function kumo.reject(code, message)
  if math.type(code) ~= 'integer' then error('kumo.reject: code must be an integer', 2) end
  error(setmetatable({ code = code, message = tostring(message or ''), how = 'reject' }, RejectMT), 0)
end
function kumo.disconnect(code, message, how)
  if math.type(code) ~= 'integer' then error('kumo.disconnect: code must be an integer', 2) end
  how = how or 'ForceDisconnect'
  if how ~= 'ForceDisconnect' and how ~= 'FollowWith421' and how ~= 'If421' then
    error("kumo.disconnect: how must be one of 'ForceDisconnect', 'FollowWith421', 'If421'", 2)
  end
  error(setmetatable({ code = code, message = tostring(message or ''), how = how }, RejectMT), 0)
end

local function msgh(err)
  if type(err) == 'table' and getmetatable(err) == RejectMT then return err end
  local text = tostring(err)
  return { message = text, traceback = debug.traceback(text, 2) }
end

local function wrap_args(kinds, ...)
  if kinds == '' then return ... end
  local args = pack(...)
  for i = 1, #kinds do
    local w = WRAPPERS[kinds:sub(i, i)]
    if w and args[i] ~= nil then args[i] = w(args[i]) end
  end
  return unpack(args, 1, args.n)
end

-- Called by the engine for every event. Returns a numeric status first
-- (numbers are the cheapest values to read from JS):
--   0                        no handler (or every multi handler returned nothing)
--   1, n, v1, v2             the handler's values (n of them, at most 2 kept)
--   2, code, message, how    kumo.reject / kumo.disconnect
--   3, message, traceback    any other error
local function finish(r)
  if r.n == 0 then return 1, 0 end
  return 1, r.n, unwrap(r[1]), unwrap(r[2])
end

-- An error without a policy position (raised in a tail call, where Lua
-- keeps no caller line) is prefixed with where the handler was registered.
local function locate(e, h, name)
  local text = e.message:gsub('^kumo:%d+: ', '')
  if not text:find('^[^%s:]+:%d+:') then
    text = h.where .. ": in the '" .. name .. "' event handler: " .. text
  end
  return text
end

local function dispatch(name, kinds, ...)
  local list = handlers[name]
  if list == nil then return 0 end
  local prev = current_event
  current_event = name
  local res
  if #list == 1 and not MULTI[name] then
    res = pack(xpcall(list[1].fn, msgh, wrap_args(kinds, ...)))
    current_event = prev
    if not res[1] then
      local e = res[2]
      if getmetatable(e) == RejectMT then return 2, e.code, e.message, e.how end
      return 3, locate(e, list[1], name), e.traceback
    end
    return finish(pack(unpack(res, 2, res.n)))
  end
  for i = 1, #list do
    res = pack(xpcall(list[i].fn, msgh, wrap_args(kinds, ...)))
    if not res[1] then
      current_event = prev
      local e = res[2]
      if getmetatable(e) == RejectMT then return 2, e.code, e.message, e.how end
      return 3, locate(e, list[i], name), e.traceback
    end
    if res.n > 1 then
      current_event = prev
      return finish(pack(unpack(res, 2, res.n)))
    end
  end
  current_event = prev
  return 0
end

local function handler_names()
  local out = {}
  for k in pairs(handlers) do out[#out + 1] = k end
  return out
end

---------------------------------------------------------------------------
-- Module loading: package.path on disk (the host reads files), and the
-- bundled policy-extras.

package.path = '/opt/kumomta/share/?.lua;/opt/kumomta/share/?/init.lua;'
  .. '/opt/kumomta/etc/policy/?.lua;/opt/kumomta/etc/policy/?/init.lua;'
  .. H.policy_dir .. '/?.lua;' .. H.policy_dir .. '/?/init.lua'

-- Our searcher replaces Lua's file searcher (which would only see wasmoon's
-- in-memory file system and list every package.path entry a second time)
-- and the C searchers (no C modules in WASM): preload, then disk.
local find_module = H.find_module
local preload_searcher = package.searchers[1]
package.searchers = { preload_searcher, function(name)
  local path, source = find_module(name, package.path)
  if path == nil then
    return source -- the "no file" explanation
  end
  local chunk, err = load(source, '@' .. path, 't')
  if not chunk then error(err, 0) end
  return chunk, path
end }

---------------------------------------------------------------------------
-- Memoize: caches live in JS, shared by every context. Values are marshalled
-- so that wrapped host objects (config objects, maps) survive the copy.

local function marshal(v)
  if type(v) ~= 'table' then return v end
  local mt = getmetatable(v)
  if mt and mt.__kumo_ud then
    return { __kumo_ud = rawget(v, 1), __kumo_kind = mt.__kumo_kind }
  end
  if mt and mt.__kumo_host_map then
    return { __kumo_map = rawget(v, 1), __kumo_kind = mt.__kumo_host_map }
  end
  local out = {}
  for k, x in pairs(v) do out[k] = marshal(x) end
  return out
end
local MAP_WRAPPERS = {}
local function unmarshal(v)
  if type(v) ~= 'table' then return v end
  if v.__kumo_ud ~= nil then return WRAPPERS[v.__kumo_kind](v.__kumo_ud) end
  if v.__kumo_map ~= nil then return MAP_WRAPPERS[v.__kumo_kind](v.__kumo_map) end
  for k, x in pairs(v) do v[k] = unmarshal(x) end
  return v
end

local memo_define, memo_get, memo_put, json_encode =
  hw(H.memo_define), H.memo_get, hw(H.memo_put), H.json_encode
function kumo.memoize(fn, params)
  if type(fn) ~= 'function' then error('kumo.memoize: first argument must be a function', 2) end
  local cache = memo_define(params)
  return function(...)
    local ok, key = pcall(json_encode, pack(...))
    if not ok then error('kumo.memoize: arguments must be JSON-serializable: ' .. tostring(key), 2) end
    local found, value = memo_get(cache, key)
    if found then return unmarshal(value) end
    local v = fn(...)
    memo_put(cache, key, marshal(v))
    return v
  end
end

---------------------------------------------------------------------------
-- Host maps (domain_map, cidr map, regex_set_map): the data lives in JS.

local function host_map(kind, ctor, get, set)
  local MT = { __kumo_host_map = kind }
  MT.__index = function(t, k) return unmarshal(get(rawget(t, 1), k)) end
  MT.__newindex = function(t, k, v) set(rawget(t, 1), k, marshal(v)) end
  MAP_WRAPPERS[kind] = function(ud) return setmetatable({ ud }, MT) end
  return function(tbl)
    local init = {}
    if tbl ~= nil then for k, v in pairs(tbl) do init[k] = marshal(v) end end
    return MAP_WRAPPERS[kind](ctor(init))
  end
end
kumo.domain_map = { new = host_map('domain_map', hw(H.domain_map_new), hw(H.domain_map_get), hw(H.domain_map_set)) }
kumo.cidr = { make_map = host_map('cidr_map', hw(H.cidr_map_new), hw(H.cidr_map_get), hw(H.cidr_map_set)) }
kumo.regex_set_map = { new = host_map('regex_set_map', hw(H.regex_map_new), hw(H.regex_map_get), hw(H.regex_map_set)) }

---------------------------------------------------------------------------
-- Plain host functions, installed from the host's catalogue: H.sync_names,
-- H.async_names and H.config_names (the make_* constructors returning config
-- objects) list dotted names; H.get_function(kind, name) hands one over. A
-- context fetches a function the first time it is called, so a new context
-- costs a closure per name instead of a JS function per name.
local get_function = H.get_function
local function lazy_functions(kind)
  return setmetatable({}, { __index = function(t, k)
    local f = get_function(kind, k)
    if f ~= nil then rawset(t, k, f) end
    return f
  end })
end
H.sync_functions = lazy_functions('sync')
H.async_functions = lazy_functions('async')
H.config_functions = lazy_functions('config')
-- The stub tail-calls the real wrapper, so error levels (file:line of the
-- caller) are the same as if it had been installed directly.
local function lazy(make)
  local f
  return function(...)
    if f == nil then f = make() end
    return f(...)
  end
end
kumo.__lazy = lazy

local function install(path, f)
  local t = kumo
  local parts = {}
  for p in path:gmatch('[^.]+') do parts[#parts + 1] = p end
  for i = 1, #parts - 1 do
    t[parts[i]] = t[parts[i]] or {}
    t = t[parts[i]]
  end
  t[parts[#parts]] = f
end
for _, name in ipairs(H.sync_names) do
  install(name, lazy(function() return hw(H.sync_functions[name]) end))
end
for _, name in ipairs(H.async_names) do
  install(name, lazy(function() return ha(H.async_functions[name]) end))
end
-- A content key for a parameter table: config objects are immutable, so a
-- handler that returns the same literal table on every call gets the same
-- object back without crossing into JS. nil = not cacheable.
-- Scalars are written with %q, which makes each one self-delimiting (quoted
-- and escaped strings, exact hex floats, integers, true/false) in one C call,
-- so joining them with '=' stays unambiguous; no number-to-string detours.
local format = string.format
local function cfg_key(v, depth)
  local tv = type(v)
  if tv == 'string' or tv == 'number' or tv == 'boolean' then return format('%q', v) end
  if tv == 'table' and getmetatable(v) == nil and depth < 8 then
    local parts, n = {}, 0
    for k, x in pairs(v) do
      local kk, xk = cfg_key(k, depth + 1), cfg_key(x, depth + 1)
      if kk == nil or xk == nil then return nil end
      parts[n + 1], parts[n + 2] = kk, xk
      n = n + 2
    end
    return '{' .. table.concat(parts, '=', 1, n) .. '}'
  end
  return nil
end

-- Cheaper still, for the common flat table (string keys, scalar values)
-- that repeats: a copy of each of the last few such tables that hit the
-- content cache, compared key by key (numbers of the same subtype: 1 and 1.0
-- may parse differently); no string built.
local mtype = math.type
local RECENT = 8
local function flat_copy(v)
  local copy, n = {}, 0
  for k, x in pairs(v) do
    local tx = type(x)
    if type(k) ~= 'string' or (tx ~= 'string' and tx ~= 'number' and tx ~= 'boolean') then
      return nil
    end
    copy[k] = x
    n = n + 1
  end
  return copy, n
end
local function flat_equal(params, copy, n)
  local seen = 0
  for k, x in pairs(params) do
    local y = copy[k]
    if y ~= x or (type(x) == 'number' and mtype(x) ~= mtype(y)) then return false end
    seen = seen + 1
  end
  return seen == n
end

for _, name in ipairs(H.config_names) do
  local cache, size = {}, 0
  local recent, next_slot = {}, 1 -- { copy, n, obj } of flat parameter tables
  local f
  install(name, function(params, ...)
    local plain = select('#', ...) == 0 and type(params) == 'table' and getmetatable(params) == nil
    if plain then
      for i = 1, #recent do
        local e = recent[i]
        if flat_equal(params, e[1], e[2]) then return e[3] end
      end
    end
    f = f or H.config_functions[name]
    local key = plain and cfg_key(params, 0) or nil
    local obj = key ~= nil and cache[key] or nil
    if obj ~= nil then
      -- Seen before: a table that repeats, worth a place among the recent.
      local copy, n = flat_copy(params)
      if copy ~= nil then
        recent[next_slot] = { copy, n, obj }
        next_slot = next_slot % RECENT + 1
      end
      return obj
    end
    local ok, v = pcall(f, params, ...)
    if not ok then rethrow(v, 2) end
    obj = wrap_cfg(v)
    if key ~= nil then
      if size >= 256 then cache, size = {}, 0 end
      cache[key] = obj
      size = size + 1
    end
    return obj
  end)
end
kumo.serde = kumo.serde or {}
for _, n in ipairs({ 'json_load', 'json_parse', 'json_encode', 'json_encode_pretty', 'toml_load',
  'toml_parse', 'toml_encode', 'toml_encode_pretty' }) do
  kumo.serde[n] = kumo.serde[n] or kumo[n]
end

function kumo.log_error(...) H.lua_log('error', caller_where(2), ...) end
function kumo.log_warn(...) H.lua_log('warn', caller_where(2), ...) end
function kumo.log_info(...) H.lua_log('info', caller_where(2), ...) end
function kumo.log_debug(...) H.lua_log('debug', caller_where(2), ...) end

function kumo.traceback(level)
  local frames = {}
  local l = (level or 1) + 1
  while true do
    local info = debug.getinfo(l, 'Slnu')
    if not info then break end
    frames[#frames + 1] = {
      short_src = info.short_src, curr_line = info.currentline, source = info.source,
      what = info.what, name = info.name, line_defined = info.linedefined,
      last_line_defined = info.lastlinedefined, is_tail_call = info.istailcall,
    }
    l = l + 1
  end
  return frames
end

-- Lua glue of the long-tail host modules (src/policy/host/host_object.ts):
-- gives host objects (throttles, times, regexes, ...) their Lua shape.
if H.sync_functions.__lua_glue then
  for _, g in ipairs(H.sync_functions.__lua_glue()) do
    assert(load(g[2], '=' .. g[1], 't'))(kumo, H, WRAPPERS)
  end
end

-- Held objects (engine.ts PolicySession): a value an event handler returned,
-- kept in this context between dispatches. A custom_lua connection object
-- lives here for its delivery session. Ops: 'hold' runs event a and keeps
-- its first value (returns its key); 'call' runs obj:b(...) on held object
-- a (kind 'M' = a list of messages); 'has' tells whether it has method b;
-- 'drop' forgets a ('*' = all). Status codes as for dispatch.
local held, held_next = {}, 0
local function session(op, a, b, kinds, ...)
  if op == 'hold' then
    local r = pack(dispatch(a, kinds, ...))
    if r[1] ~= 1 or r[2] == 0 or r[3] == nil then return unpack(r, 1, r.n) end
    held_next = held_next + 1
    held[held_next] = r[3]
    return 1, 1, held_next
  elseif op == 'drop' then
    if a == '*' then held = {} else held[a] = nil end
    return 0
  end
  local obj = held[a]
  local fn = type(obj) == 'table' and obj[b] or nil
  if op == 'has' then return 1, 1, type(fn) == 'function' end
  if fn == nil then return 3, 'invalid connection object: no ' .. tostring(b) .. ' method', '' end
  local args
  if kinds == 'M' then
    local list = {}
    for i, m in ipairs((...)) do list[i] = wrap_msg(m) end
    args = pack(list)
  else
    args = pack(wrap_args(kinds, ...))
  end
  local prev = current_event
  current_event = b
  local res = pack(xpcall(fn, msgh, obj, unpack(args, 1, args.n)))
  current_event = prev
  if not res[1] then
    local e = res[2]
    if getmetatable(e) == RejectMT then return 2, e.code, e.message, e.how end
    return 3, e.message, e.traceback
  end
  return finish(pack(unpack(res, 2, res.n)))
end

__kumo_dispatch = dispatch
__kumo_session = session
__kumo_handler_names = handler_names
`;
