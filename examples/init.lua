-- kumo-edge example policy: a loopback relay built from the policy-extras
-- helpers. It accepts mail on 127.0.0.1:2025 (SMTP) and 127.0.0.1:8000 (HTTP
-- inject and admin API), spools it durably under ./tmp/example/ and hands it
-- to a smart host on 127.0.0.1:2026 — it never sends mail off this machine.
-- Start it with:  deno task start   (or: kumo --policy examples/init.lua)
-- To see deliveries, run any SMTP sink on 127.0.0.1:2026, e.g.
--   /usr/sbin/smtp-sink -v 127.0.0.1:2026 10
-- and inject with e.g.  swaks --server 127.0.0.1:2025 --to ana@example.test
--
-- Data files (next to this file, in upstream's formats):
--   sources.toml           egress sources and pools     (policy-extras.sources)
--   listener_domains.toml  relay / bounce / FBL domains (policy-extras.listener_domains)
--   queues.toml            tenants, campaigns, routing  (policy-extras.queue)
--   shaping.toml           per-destination traffic shaping (policy-extras.shaping)
--   dkim_data.toml         DKIM signing (policy-extras.dkim_sign), on once its key exists
local kumo = require 'kumo'
local sources = require 'policy-extras.sources'
local listener_domains = require 'policy-extras.listener_domains'
local shaping = require 'policy-extras.shaping'
local queue_helper = require 'policy-extras.queue'

-- Keep all state next to the repository, so the example needs no root. Data
-- files are found relative to this file, whatever the working directory.
local here = debug.getinfo(1, 'S').source:sub(2):match('(.*/)') or './'
local state = here .. '../tmp/example'

-- Why nothing leaves this machine (three independent layers):
--  1. queues.toml routes every destination to the smart host [127.0.0.1]
--     (routing_domain in [queue.default]); shaping.toml gives that route
--     port 2026 and lifts the loopback ban (prohibited_hosts) for it only.
--  2. The only egress sources (sources.toml) bind 127.0.0.1, from which the
--     kernel cannot reach any non-loopback address.
--  3. DNS goes to 127.0.0.1:53 only (configure_resolver below): MX look-ups
--     made by the helpers (shaping's MX roll-up, the queue helper's
--     provider_name back-fill) go to a resolver on this machine, or fail
--     (after the 5 s DNS timeout, logged as shaping warnings) when none is
--     listening there; this process never asks a public name server.
-- To relay for real, remove routing_domain from queues.toml, give the
-- sources your public addresses and drop the configure_resolver call.

kumo.on('init', function()
  kumo.dns.configure_resolver { name_servers = { '127.0.0.1:53' } }

  kumo.define_spool {
    name = 'data',
    path = state .. '/spool/data',
  }
  kumo.define_spool {
    name = 'meta',
    path = state .. '/spool/meta',
  }

  kumo.configure_local_logs {
    log_dir = state .. '/logs',
    max_segment_duration = '1 minute',
    headers = { 'Subject' },
  }

  kumo.start_esmtp_listener {
    listen = '127.0.0.1:2025',
    hostname = 'mx.example.test',
    -- loopback clients may relay to anywhere (this is also the default);
    -- other peers only to the domains listener_domains.toml allows
    relay_hosts = { '127.0.0.1', '::1' },
  }

  kumo.start_http_listener {
    listen = '127.0.0.1:8000',
    trusted_hosts = { '127.0.0.1', '::1' },
  }
end)

-- Egress sources and pools: answers get_egress_source / get_egress_pool.
sources:setup { here .. 'sources.toml' }

-- Which recipient/sender domains are relayed, and which carry bounces (OOB)
-- or feedback reports (ARF) that are logged and dropped.
kumo.on('get_listener_domain', listener_domains:setup { here .. 'listener_domains.toml' })

-- Traffic shaping per destination, merged over the bundled defaults.
kumo.on('get_egress_path_config', shaping:setup { here .. 'shaping.toml' })

-- DKIM signing: dkim_data.toml signs mail From example.test once the key
-- <repo>/tmp/example/dkim/example.test/default.key exists (dkim_data.toml
-- shows how to make it and which TXT record to publish). Without the key
-- nothing is signed. The inline table points the domain block at that key.
local sign = function(msg) end
local dkim_key = state .. '/dkim/example.test/default.key'
if pcall(kumo.fs.metadata_for_path, dkim_key) then
  local dkim_sign = require 'policy-extras.dkim_sign'
  sign = dkim_sign:setup {
    here .. 'dkim_data.toml',
    { domain = { ['example.test'] = { filename = dkim_key } } },
  }
end

-- Tenants, campaigns and per-destination queue settings. The queue helper
-- registers get_queue_config and must be the last to do so.
local queues = queue_helper:setup { here .. 'queues.toml' }

kumo.on('smtp_server_message_received', function(msg)
  queues:apply(msg) -- tenant/campaign from X-Tenant / X-Campaign, routing
  sign(msg) -- last: nothing may change the message after signing
end)

kumo.on('http_message_generated', function(msg)
  queues:apply(msg)
  sign(msg)
end)
