--[[
policy-extras.dkim_sign: DKIM-sign messages from TOML/JSON data files
(policy-extras.md §5). kumo-edge's own implementation of the upstream helper.

  local dkim_sign = require 'policy-extras.dkim_sign'
  local sign = dkim_sign:setup({ '/opt/kumomta/etc/dkim_data.toml' })
  kumo.on('smtp_server_message_received', function(msg)
    -- ... everything else first: signing must be the last change to the message
    sign(msg)
  end)

Data:
  [base]                      selector, headers, expiration, header_canonicalization,
                              body_canonicalization, over_sign, policy = 'Always',
                              additional_signatures = { names }, vault_mount, vault_path_prefix
  [domain."<From domain or *.pattern>"]
                              selector, headers, algo = 'sha256'|'ed25519', filename,
                              expiration, canonicalizations, over_sign, policy
  [signature."<name>"]        the same plus required domain,
                              policy = 'Always'|'OnlyIfMissingDomainBlock'

The domain block is chosen by the From header's domain; the key defaults to
/opt/kumomta/etc/dkim/<domain>/<selector>.key (vault: <prefix or 'dkim'>/<domain>/<selector>).
]]
local mod = {}
local kumo = require 'kumo'

local DKIM_PATH = '/opt/kumomta/etc/dkim'

local COMMON = {
  selector = 'string', headers = 'list', expiration = 'number', header_canonicalization = 'string',
  body_canonicalization = 'string', over_sign = 'boolean', policy = 'string',
}
local SECTIONS = {
  base = { additional_signatures = 'list', vault_mount = 'string', vault_path_prefix = 'string' },
  domain = { algo = 'string', filename = 'string' },
  signature = { algo = 'string', filename = 'string', domain = 'string' },
}

local function check_block(file_name, where, section, block)
  if type(block) ~= 'table' then
    error(string.format("reading data from file '%s': %s must be a table", file_name, where))
  end
  for k, v in pairs(block) do
    local want = COMMON[k] or SECTIONS[section][k]
    if want == nil then
      error(string.format("reading data from file '%s': %s: unknown field '%s'", file_name, where, k))
    end
    local got = type(v)
    if want == 'list' then want = 'table' end
    if got ~= want then
      error(string.format("reading data from file '%s': %s.%s: expected %s, got %s", file_name,
        where, k, want, got))
    end
  end
end

local function load_file(file_name)
  if file_name:match('%.json$') then return kumo.json_load(file_name) end
  return kumo.toml_load(file_name)
end

local function merge_into(src, dest)
  for k, v in pairs(src) do dest[k] = v end
end

local function load_dkim_data(dkim_data_files)
  local data = { base = {}, domain = {}, signature = {} }
  for _, file_name in ipairs(dkim_data_files) do
    local raw = load_file(file_name)
    for k, v in pairs(raw) do
      if k == 'base' then
        check_block(file_name, 'base', 'base', v)
        merge_into(v, data.base)
      elseif k == 'domain' or k == 'signature' then
        for name, block in pairs(v) do
          check_block(file_name, string.format('%s."%s"', k, name), k, block)
          data[k][name] = data[k][name] or {}
          merge_into(block, data[k][name])
        end
      else
        error(string.format("reading data from file '%s': unknown section '%s'", file_name, k))
      end
    end
  end

  for _, signame in ipairs(data.base.additional_signatures or {}) do
    if not data.signature[signame] then
      error(string.format(
        "dkim policy lists base.additional_signature '%s' but that signature is not defined in any signature block",
        signame))
    end
  end
  for domain_name, domain in pairs(data.domain) do
    if not data.base.selector and not domain.selector then
      error(string.format(
        "dkim domain '%s' is missing a selector and no default selector is defined in base",
        domain_name))
    end
  end
  for signame, sig in pairs(data.signature) do
    if not sig.domain then
      error(string.format("dkim signature '%s' is missing its domain", signame))
    end
  end
  return data
end

-- Domain block for a From domain: exact name first, then `*.parent` wildcards.
local function find_domain(domains, name)
  name = name:lower()
  if domains[name] then return domains[name] end
  local rest = name
  while true do
    local dot = rest:find('.', 1, true)
    if not dot then return nil end
    rest = rest:sub(dot + 1)
    local block = domains['*.' .. rest]
    if block then return block end
  end
end

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

  local block = find_domain(data.domain, sender_domain)
  if block then
    local policy = block.policy or base.policy or 'Always'
    if policy ~= 'Always' then
      error(string.format("dkim_sign: invalid policy '%s' for domain '%s'", policy, sender_domain))
    end
    msg:dkim_sign(make_signer(signer_params(sender_domain, block, base), block.algo))
    signed_domain = true
  end

  for _, signame in ipairs(base.additional_signatures or {}) do
    local sig = data.signature[signame]
    local policy = sig.policy or 'Always'
    if policy ~= 'Always' and policy ~= 'OnlyIfMissingDomainBlock' then
      error(string.format("dkim_sign: invalid policy '%s' for signature '%s'", policy, signame))
    end
    if not (policy == 'OnlyIfMissingDomainBlock' and signed_domain) then
      msg:dkim_sign(make_signer(signer_params(sig.domain, sig, base), sig.algo))
    end
  end
end

--- Load the data files (checked now, re-read every 5 minutes or on a config
--- epoch change) and return `function(msg)` that signs a message.
function mod:setup(dkim_data_files)
  if mod.CONFIGURED then error 'dkim_sign module has already been configured' end
  if type(dkim_data_files) ~= 'table' then
    error 'dkim_sign:setup expects a list of data file names'
  end
  local cached_load_data = kumo.memoize(load_dkim_data, {
    name = 'dkim_signing_data',
    ttl = '5 minutes',
    capacity = 10,
    invalidate_with_epoch = true,
  })
  mod.CONFIGURED = { data_files = dkim_data_files }
  return function(msg)
    do_dkim_sign(msg, cached_load_data(dkim_data_files))
  end
end

kumo.on('validate_config', function()
  if not mod.CONFIGURED then return end
  local ok, err = pcall(load_dkim_data, mod.CONFIGURED.data_files)
  if not ok then
    kumo.validation_failed()
    print 'Issues found in the combined set of dkim_sign files:'
    for _, file_name in ipairs(mod.CONFIGURED.data_files) do print(string.format(' - %s', file_name)) end
    print('Error loading data: ' .. tostring(err))
  end
end)

return mod
