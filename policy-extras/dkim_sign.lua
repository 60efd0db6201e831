--[[
policy-extras.dkim_sign: DKIM-sign messages from TOML/JSON data files
(policy-extras.md §5). kumo-edge's own implementation of the upstream helper.

  local dkim_sign = require 'policy-extras.dkim_sign'
  local sign = dkim_sign:setup({ '/opt/kumomta/etc/dkim_data.toml' })
  kumo.on('smtp_server_message_received', function(msg)
    -- ... everything else first: signing must be the last change to the message
    sign(msg)
  end)

Place on the mail's path: reception, last step before spooling. Data files
are a list of paths (`.toml` read as TOML, anything else as JSON, comments
allowed) or inline Lua tables, merged in order (later files override keys
one by one). They are checked when setup first runs (a bad file stops
start-up naming the file and the key) and cached by kumo.memoize
('dkim_signing_data', 5 minutes, reloaded on a config epoch bump).

Data:
  [base]                      selector, headers, expiration, header_canonicalization,
                              body_canonicalization, over_sign, policy = 'Always',
                              additional_signatures = { names }, vault_mount, vault_path_prefix
  [domain."<From domain or *.pattern>"]
                              selector, headers, algo = 'sha256'|'ed25519', filename,
                              expiration, canonicalizations, over_sign, policy
  [signature."<name>"]        the same plus required domain,
                              policy = 'Always'|'OnlyIfMissingDomainBlock'

The domain block is chosen by the From header's domain with kumo.domain_map
rules (exact beats wildcard, `*.x` never matches `x`, a deeper exact entry
hides a shallower wildcard, case-sensitive). The key defaults to
/opt/kumomta/etc/dkim/<domain>/<selector>.key (vault: <prefix or 'dkim'>/<domain>/<selector>).
]]
local mod = {}
local kumo = require 'kumo'
local typing = require 'policy-extras.typing'
local utils = require 'policy-extras.policy_utils'

local DKIM_PATH = '/opt/kumomta/etc/dkim'

local String, Number, Bool, List, Option = typing.string, typing.number, typing.boolean, typing.list,
  typing.option

local DomainSigningPolicy = typing.enum('DomainSigningPolicy', { 'Always' })
local SignatureSigningPolicy = typing.enum('SignatureSigningPolicy', { 'Always', 'OnlyIfMissingDomainBlock' })
local SigningAlgo = typing.enum('SigningAlgo', { 'sha256', 'ed25519' })
local Canonicalization = typing.enum('Canonicalization', { 'Relaxed', 'Simple' })

local function signing_fields(extra)
  local fields = {
    selector = Option(String),
    headers = Option(List(String)),
    expiration = Option(Number),
    header_canonicalization = Option(Canonicalization),
    body_canonicalization = Option(Canonicalization),
    over_sign = Option(Bool),
  }
  for k, v in pairs(extra) do fields[k] = v end
  return fields
end

local Base = typing.record('DkimSignConfig.Base', signing_fields {
  policy = Option(DomainSigningPolicy),
  additional_signatures = Option(List(String)),
  vault_mount = Option(String),
  vault_path_prefix = Option(String),
})
local Domain = typing.record('DkimSignConfig.Domain', signing_fields {
  policy = Option(DomainSigningPolicy),
  algo = Option(SigningAlgo),
  filename = Option(String),
})
local Signature = typing.record('DkimSignConfig.Signature', signing_fields {
  domain = String,
  policy = Option(SignatureSigningPolicy),
  algo = Option(SigningAlgo),
  filename = Option(String),
})
local DkimSignConfig = typing.record('DkimSignConfig', {
  base = Option(Base),
  domain = Option(typing.map(String, Domain)),
  signature = Option(typing.map(String, Signature)),
})
mod.DkimSignConfig = DkimSignConfig

local function describe(item)
  if type(item) == 'string' then return '"' .. item .. '"' end
  return 'inline table'
end

local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

-- Read, check and merge the files; `data.domain` stays a plain table.
local function load_raw(dkim_data_files)
  if type(dkim_data_files) ~= 'table' then
    error('dkim_sign:setup: expected a list of file names or tables, got ' .. type(dkim_data_files), 0)
  end
  local data = { base = {}, domain = {}, signature = {} }
  for _, item in ipairs(dkim_data_files) do
    local ok, raw = pcall(utils.load_json_or_toml_file, item)
    if not ok then
      error(string.format('policy-extras.dkim_sign: cannot load %s: %s', describe(item), tostring(raw)), 0)
    end
    local valid, err = DkimSignConfig:validate(raw)
    if not valid then
      error(string.format('policy-extras.dkim_sign: invalid data in %s: %s', describe(item), err), 0)
    end
    utils.merge_into(raw.base or {}, data.base)
    for _, section in ipairs { 'domain', 'signature' } do
      for name, params in pairs(raw[section] or {}) do
        local merged = data[section][name] or {}
        utils.merge_into(params, merged)
        data[section][name] = merged
      end
    end
  end

  for _, signame in ipairs(data.base.additional_signatures or {}) do
    if not data.signature[signame] then
      error(string.format(
        "dkim policy lists base.additional_signature '%s' but that signature is not defined in any signature block",
        signame), 0)
    end
  end
  for _, domain_name in ipairs(typing.sorted_keys(data.domain)) do
    if not data.base.selector and not data.domain[domain_name].selector then
      error(string.format(
        "dkim domain '%s' is missing a selector and no default selector is defined in base",
        domain_name), 0)
    end
  end
  for _, signame in ipairs(typing.sorted_keys(data.signature)) do
    if not data.base.selector and not data.signature[signame].selector then
      error(string.format(
        "dkim signature '%s' is missing a selector and no default selector is defined in base",
        signame), 0)
    end
  end
  return data
end

local function load_dkim_data(dkim_data_files)
  local data = load_raw(dkim_data_files)
  data.domains = data.domain
  data.domain = kumo.domain_map.new(data.domain)
  return data
end
mod.load_data = load_dkim_data

local function make_signer(params, algo)
  algo = algo or 'sha256'
  if algo == 'sha256' then return kumo.dkim.rsa_sha256_signer(params) end
  if algo == 'ed25519' then return kumo.dkim.ed25519_signer(params) end
  error(string.format("invalid algo '%s' for domain '%s'", algo, params.domain))
end

local function signer_params(domain, block, base)
  local params = {
    domain = domain,
    selector = block.selector or base.selector,
    expiration = block.expiration or base.expiration,
    headers = block.headers or base.headers,
    header_canonicalization = block.header_canonicalization or base.header_canonicalization,
    body_canonicalization = block.body_canonicalization or base.body_canonicalization,
    over_sign = block.over_sign or base.over_sign,
  }
  if base.vault_mount then
    params.key = {
      vault_mount = base.vault_mount,
      vault_path = block.filename or string.format('%s/%s/%s', base.vault_path_prefix or 'dkim',
        domain, params.selector),
    }
  else
    params.key = block.filename or string.format('%s/%s/%s.key', DKIM_PATH, domain, params.selector)
  end
  return params
end

local function do_dkim_sign(msg, data)
  local from_header = msg:from_header()
  if not from_header then
    kumo.reject(552, '5.6.0 DKIM signing requires a From header, but it is missing from this message')
  end
  local sender_domain = from_header.domain
  local base = data.base
  local signed_domain = false

  local block = data.domain[sender_domain]
  if block then
    msg:dkim_sign(make_signer(signer_params(sender_domain, block, base), block.algo))
    signed_domain = true
  end

  for _, signame in ipairs(base.additional_signatures or {}) do
    local sig = data.signature[signame]
    if not (sig.policy == 'OnlyIfMissingDomainBlock' and signed_domain) then
      msg:dkim_sign(make_signer(signer_params(sig.domain, sig, base), sig.algo))
    end
  end
end

--- Load the data files (checked now, re-read every 5 minutes or on a config
--- epoch change) and return `function(msg)` that signs a message.
function mod:setup(dkim_data_files)
  if mod.CONFIGURED then error('dkim_sign module has already been configured', 2) end
  local cached_load_data = kumo.memoize(load_dkim_data, {
    name = 'dkim_signing_data',
    ttl = '5 minutes',
    capacity = 10,
    invalidate_with_epoch = true,
  })
  -- Checked once per process (every Lua context re-runs the policy): a bad
  -- file at start-up is fatal; later edits make signing fail until fixed.
  local checked_once = kumo.memoize(function(files)
    load_raw(files)
    return true
  end, { name = 'dkim_signing_data_checked', ttl = '100 years', capacity = 10 })
  local ok, err = pcall(checked_once, dkim_data_files)
  if not ok then error(tostring(err), 2) end

  mod.CONFIGURED = { data_files = dkim_data_files }
  return function(msg)
    do_dkim_sign(msg, cached_load_data(dkim_data_files))
  end
end

kumo.on('validate_config', function()
  if not mod.CONFIGURED then return end
  local failed = false
  local function problem(text)
    if not failed then
      failed = true
      kumo.validation_failed()
      print 'Issues found in the combined set of dkim_sign files:'
      for _, item in ipairs(mod.CONFIGURED.data_files) do print(string.format(' - %s', describe(item))) end
    end
    print(text)
  end
  local ok, data = pcall(load_dkim_data, mod.CONFIGURED.data_files)
  if not ok then
    problem('Error loading data: ' .. tostring(data))
    return
  end
  -- Sign a test message for every exact domain, so that a missing or bad
  -- key file shows up now rather than at the first message.
  for _, domain in ipairs(typing.sorted_keys(data.domains)) do
    if not domain:find('*', 1, true) then
      local msg = kumo.make_message(string.format('someone@%s', domain), 'postmaster@example.com',
        string.format('From: someone@%s\r\nSubject: hello\r\n\r\nWoot', domain))
      local signed, err = pcall(do_dkim_sign, msg, data)
      if not signed then problem(string.format("domain '%s': %s", domain, tostring(err))) end
    end
  end
  local referenced = {}
  for _, signame in ipairs(data.base.additional_signatures or {}) do referenced[signame] = true end
  for _, signame in ipairs(typing.sorted_keys(data.signature)) do
    if not referenced[signame] then
      problem(string.format(
        "[signature.'%s'] is not referenced by base.additional_signatures and will not be used", signame))
    end
  end
end)

return mod
