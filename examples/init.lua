-- kumo-edge example policy: a loopback relay that accepts mail on
-- 127.0.0.1:2025, spools it durably under ./tmp/ and delivers it by MX.
-- Start it with:  deno task start   (or: kumo --policy examples/init.lua)
local kumo = require 'kumo'

-- Keep all state next to the repository, so the example needs no root.
local here = debug.getinfo(1, 'S').source:sub(2):match('(.*/)') or './'
local state = here .. '../tmp/example'

kumo.on('init', function()
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
    -- loopback clients may relay (this is also the default)
    relay_hosts = { '127.0.0.1', '::1' },
  }
end)

-- Every destination gets the same gentle schedule in this example.
kumo.on('get_queue_config', function(domain, tenant, campaign, routing_domain)
  return kumo.make_queue_config {
    retry_interval = '1 minute',
    max_retry_interval = '20 minutes',
    max_age = '1 day',
  }
end)

kumo.on('get_egress_path_config', function(routing_domain, egress_source, site_name)
  return kumo.make_egress_path {
    connection_limit = 4,
    max_message_rate = '100/s',
    enable_tls = 'Opportunistic',
  }
end)
