/**
 * kumo.* utility functions through real Lua policies (lua-api.md §5, §8):
 * kumo.string, the DNS knobs, the invoke_get_* helpers, trace headers,
 * RFC 3464 report generation and the functions kumo-edge refuses.
 *
 * Each test loads a policy into a real PolicyEngine (no server) and asserts
 * what the policy sees. Nothing here reaches the system resolver.
 *
 * @module
 */

import assert from "node:assert/strict";
import { loadTestPolicy } from "../src/policy/host/load_test_policy.ts";
import { startDnsServer } from "./support/dns_server.ts";

// ---------------------------------------------------------------------------
// kumo.string

Deno.test("kumo.string split family follows Rust str semantics", async () => {
  await using p = await loadTestPolicy(`
    local s = kumo.string
    local function j(t) return table.concat(t, '|') end
    kumo.on('t', function()
      assert(j(s.split('a,b,,c', ',')) == 'a|b||c', j(s.split('a,b,,c', ',')))
      assert(j(s.split('abc', '')) == '|a|b|c|', 'empty pattern: ' .. j(s.split('abc', '')))
      assert(j(s.splitn('a,b,c', 2, ',')) == 'a|b,c', 'splitn')
      assert(#s.splitn('a,b,c', 0, ',') == 0, 'splitn 0 gives nothing')
      assert(j(s.rsplit('a,b,c', ',')) == 'c|b|a', 'rsplit')
      assert(j(s.rsplit('aaa', 'aa')) == '|a', 'rsplit searches from the right: ' .. j(s.rsplit('aaa', 'aa')))
      assert(j(s.rsplitn('a,b,c', 2, ',')) == 'c|a,b', 'rsplitn')
      assert(j(s.split_whitespace('  a \\t b\\n c  ')) == 'a|b|c', 'split_whitespace')
      assert(j(s.split_ascii_whitespace(' x  y ')) == 'x|y', 'split_ascii_whitespace')
      return 'ok'
    end)
  `);
  assert.equal(await p.run("t"), "ok");
});

Deno.test("kumo.string trim, starts_with, ends_with, replace, replacen", async () => {
  await using p = await loadTestPolicy(`
    local s = kumo.string
    kumo.on('t', function()
      assert(s.trim('  a b  ') == 'a b', 'trim')
      assert(s.trim_start('  a ') == 'a ', 'trim_start')
      assert(s.trim_end('  a ') == '  a', 'trim_end')
      assert(s.starts_with('hello', 'he') == true and s.starts_with('hello', 'lo') == false, 'starts_with')
      assert(s.ends_with('hello', 'lo') == true and s.ends_with('hello', 'he') == false, 'ends_with')
      assert(s.replace('a-b-c', '-', '+') == 'a+b+c', 'replace')
      assert(s.replace('abc', '', '-') == '-a-b-c-', 'replace empty: ' .. s.replace('abc', '', '-'))
      assert(s.replacen('a-b-c', '-', '+', 1) == 'a+b-c', 'replacen')
      assert(s.replacen('abc', '', '-', 2) == '-a-bc', 'replacen empty: ' .. s.replacen('abc', '', '-', 2))
      return 'ok'
    end)
  `);
  assert.equal(await p.run("t"), "ok");
});

Deno.test("kumo.string.wrap folds with CRLF TAB and hard-breaks long words", async () => {
  await using p = await loadTestPolicy(`
    local s = kumo.string
    kumo.on('t', function()
      assert(s.wrap 'hello' == 'hello', 'short text unchanged')
      local long = string.rep('A', 200)
      assert(s.wrap(long, 75, 100) == string.rep('A', 100) .. '\\r\\n\\t' .. string.rep('A', 100), s.wrap(long, 75, 100))
      local spaced = string.rep('hello there ', 10)
      local want = 'hello there hello there hello there hello there hello there hello there\\r\\n'
        .. '\\thello there hello there hello there hello there'
      assert(s.wrap(spaced, 75, 100) == want, s.wrap(spaced, 75, 100))
      assert(s.wrap('hello world foo bar baz woot woot', 10, 15)
        == 'hello\\r\\n\\tworld foo\\r\\n\\tbar baz\\r\\n\\twoot woot', 'soft limit 10')
      assert(s.wrap('hi there breakmepleaseIamtoolong', 10, 15)
        == 'hi there\\r\\n\\tbreakmepleaseIa\\r\\n\\tmtoolong', 'hard limit 15')
      -- defaults: 75 soft, 900 hard
      local words = string.rep('word ', 30)
      for line in (s.wrap(words) .. '\\r\\n'):gmatch('(.-)\\r\\n') do
        assert(#line <= 76, 'default soft limit: ' .. #line)
      end
      assert(#s.wrap(string.rep('B', 1000)) == 900 + 3 + 100, 'default hard limit 900')
      return 'ok'
    end)
  `);
  assert.equal(await p.run("t"), "ok");
});

Deno.test("kumo.string.normalize_smtp_response tokenizes variable parts as upstream", async () => {
  await using p = await loadTestPolicy(`
    local n = kumo.string.normalize_smtp_response
    -- usable at the top level of the policy too
    local gmail = n([[550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. For more information, go to  https://support.google.com/mail/?p=NoSuchUser 41be03b00d2f7-b93bf44f0c0si6882731a12.803 - gsmtp]])
    kumo.on('t', function(input) return n(input) end)
    kumo.on('gmail', function() return gmail end)
  `);
  assert.equal(
    await p.run("gmail"),
    "550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. For more information, go to https://support.google.com/mail/?p=NoSuchUser {hash} - gsmtp",
  );
  const cases: [string, string][] = [
    ["retry again at 2025-11-06T17:11:34.261306612Z", "retry again at {timestamp}"],
    ["a uuid 10aa5da5-3f3b-4176-beb9-32875830f082", "a uuid {uuid}"],
    ["OK ids=8a5475ccbbc611eda12250ebf67f93bd", "OK ids={uuid}"],
    ["hello aGVsbG8uCg==", "hello {base64}"],
    ["421 4.1.0 10.0.0.1 throttled try later", "421 4.1.0 {ipaddr} throttled try later"],
    ["421 4.1.0 ::1 throttled try later", "421 4.1.0 {ipaddr} throttled try later"],
    ["Accepting connection from 42.69.10.20:25", "Accepting connection from {ipaddr}"],
    ["duration 00:10:34", "duration 00:10:34"],
    ["rejecting mail for some.body@gmail.com", "rejecting mail for {email}"],
    [
      "550 Mail is rejected by recipients [aGVsbG8uCg== IP: 10.10.10.10]. https://service.mail.qq.com/detail/0/92.",
      "550 Mail is rejected by recipients {base64} IP: {ipaddr} https://service.mail.qq.com/detail/0/92.",
    ],
    [
      "Context: DispatcherDrop. Next due in 11s 999ms 990us 55ns at 2026-04-05T07:34:04.198063031Z",
      "Context: DispatcherDrop. Next due in {duration} at {timestamp}",
    ],
    ["P1Y2M3DT4H5M6S", "{duration}"],
    ["P1Y2M3DT4H5M6Shello", "{hash}"],
    ["abc11s 999ms", "abc11s {duration}"],
    ["5h 30m", "{duration}"],
    ["2yearhello", "2yearhello"],
    // dictionary words that look like base64 stay; acronyms too
    [
      "Your email requirements with DKIM that does duration",
      "Your email requirements with DKIM that does duration",
    ],
  ];
  for (const [input, want] of cases) assert.equal(await p.run("t", input), want, input);
});

Deno.test("kumo.string.psl_domain and psl_suffix use the Public Suffix List", async () => {
  await using p = await loadTestPolicy(`
    local s = kumo.string
    kumo.on('t', function()
      assert(s.psl_suffix 'www.example.com' == 'com', 'com')
      assert(s.psl_domain 'www.example.com' == 'example.com', 'example.com')
      assert(s.psl_suffix 'a.b.example.co.uk' == 'co.uk', 'co.uk')
      assert(s.psl_domain 'a.b.example.co.uk' == 'example.co.uk', 'example.co.uk')
      assert(s.psl_suffix 'mail.example.com.br' == 'com.br', 'com.br')
      -- deeper and private-section suffixes the old 20-entry list lacked
      assert(s.psl_suffix 'x.kawasaki.jp' == 'x.kawasaki.jp', s.psl_suffix 'x.kawasaki.jp')
      assert(s.psl_suffix 'foo.github.io' == 'github.io', s.psl_suffix 'foo.github.io')
      assert(s.psl_domain 'a.foo.github.io' == 'foo.github.io', 'github.io domain')
      assert(s.psl_domain 'co.uk' == nil, 'a bare suffix has no registrable domain')
      assert(select('#', s.psl_domain 'co.uk') == 1, 'an explicit nil')
      return 'ok'
    end)
  `);
  assert.equal(await p.run("t"), "ok");
});

Deno.test("kumo.string.eval_template renders MiniJinja with upstream's extras", async () => {
  await using p = await loadTestPolicy(`
    local s = kumo.string
    kumo.on('t', function()
      assert(s.eval_template('x.txt', 'Hi {{ name }}!', { name = 'Ana' }) == 'Hi Ana!', 'basic')
      -- Python-style methods and the items/reject filters (MiniJinja)
      assert(s.eval_template('x.txt', '{{ n.upper() }}', { n = 'ab' }) == 'AB', 'pycompat')
      local t = s.eval_template('x.txt', '{% for k, v in d | items %}{{k}}={{v}};{% endfor %}', { d = { a = 1, b = 2 } })
      assert(t == 'a=1;b=2;', t)
      -- auto-escaping by name
      assert(s.eval_template('x.html', '{{ v }}', { v = '<b>' }) == '&lt;b&gt;', 'html escaping')
      assert(s.eval_template('x.json', '{{ v }}', { v = 'John' }) == '"John"', 'json escaping')
      assert(s.eval_template('x.txt', '{{ v }}', { v = '<b>' }) == '<b>', 'no escaping for .txt')
      -- the normalize_smtp_response filter
      assert(s.eval_template('r.txt', '{{ r | normalize_smtp_response }}',
        { r = '250 OK ids=8a5475ccbbc611eda12250ebf67f93bd' }, 'Jinja') == '250 OK ids={uuid}', 'filter')
      assert(s.eval_template('x.txt', '{{ v }}', { v = 1 }, 'Static') == '{{ v }}', 'Static dialect')
      local ok, err = pcall(s.eval_template, 'x.txt', '{{ v', {})
      assert(not ok and tostring(err):find('syntax error', 1, true), tostring(err))
      ok, err = pcall(s.eval_template, 'x.txt', 'a', {}, 'Handlebars')
      assert(not ok and tostring(err):find('not implemented by kumo-edge', 1, true), tostring(err))
      return 'ok'
    end)
  `);
  assert.equal(await p.run("t"), "ok");
});

// ---------------------------------------------------------------------------
// What kumo-edge refuses

Deno.test("unimplemented kumo functions fail with file:line and a clear cause", async () => {
  await using p = await loadTestPolicy(`
    kumo.on('t', function(code)
      local ok, err = pcall(load(code, '@policy.lua'))
      return tostring(err)
    end)
  `);
  const cases: [string, string][] = [
    [
      "local x = kumo.configure_redis_throttles { node = 'redis://127.0.0.1/' }",
      "kumo.configure_redis_throttles",
    ],
    [
      "local x = kumo.configure_bounce_classifier { files = {} }",
      "kumo.configure_bounce_classifier",
    ],
    [
      "local x = kumo.configure_log_disposition_hook { name = 'x' }",
      "kumo.configure_log_disposition_hook",
    ],
    ["local x = kumo.aaa.configure_acct_log { log_dir = '/tmp' }", "kumo.aaa.configure_acct_log"],
    [
      "local x = kumo.kafka.build_producer { ['bootstrap.servers'] = 'x' }",
      "kumo.kafka.build_producer",
    ],
    ["local x = kumo.spf.check_host('example.test')", "kumo.spf.check_host"],
    ["local x = kumo.crypto.aes_encrypt_block()", "kumo.crypto.aes_encrypt_block"],
    ["local x = kumo.mimepart.new_text_plain('x')", "kumo.mimepart.new_text_plain"],
    ["local x = kumo.http.connect_websocket('ws://127.0.0.1/')", "kumo.http.connect_websocket"],
    ["local x = kumo.api.inject.inject_v1 {}", "kumo.api.inject.inject_v1"],
    ["local x = kumo.prometheus_metrics()", "kumo.prometheus_metrics"],
    ["local x = kumo.compute_queue_config_constraints {}", "kumo.compute_queue_config_constraints"],
    ["local x = kumo.dns.configure_test_mta_sts {}", "kumo.dns.configure_test_mta_sts"],
  ];
  for (const [code, name] of cases) {
    assert.equal(await p.run("t", code), `policy.lua:1: ${name} is not implemented by kumo-edge`);
  }
  assert.equal(
    await p.run("t", "local r = require 'redis'"),
    "policy.lua:1: require 'redis' is not implemented by kumo-edge",
  );
  assert.equal(
    await p.run("t", "local s = require 'sqlite'"),
    "policy.lua:1: require 'sqlite' is not implemented by kumo-edge",
  );
  // implemented neighbours are untouched
  assert.equal(await p.run("t", "error(type(kumo.http.build_client))"), "policy.lua:1: function");
});

Deno.test("a policy calling an unimplemented function in init fails startup naming file and line", async () => {
  await using p = await loadTestPolicy(`kumo.on('init', function()
  kumo.configure_redis_throttles { node = 'redis://127.0.0.1/' }
end)`);
  await assert.rejects(
    () => p.engine.runInit(),
    (e: Error) => {
      assert.match(
        e.message,
        /init\.lua:2: kumo\.configure_redis_throttles is not implemented by kumo-edge/,
      );
      return true;
    },
  );
});

// ---------------------------------------------------------------------------
// kumo.dns settings and the test resolver

Deno.test("kumo.dns.reverse_ip and set_mta_sts_enabled", async () => {
  await using p = await loadTestPolicy(`
    kumo.on('t', function()
      assert(kumo.dns.reverse_ip '127.0.0.1' == '1.0.0.127', kumo.dns.reverse_ip '127.0.0.1')
      assert(kumo.dns.reverse_ip '::1' == '1' .. string.rep('.0', 31), kumo.dns.reverse_ip '::1')
      assert(kumo.dns.reverse_ip '2001:db8::1' == '1' .. string.rep('.0', 23) .. '.8.b.d.0.1.0.0.2', 'v6')
      local ok, err = pcall(kumo.dns.reverse_ip, 'example.test')
      assert(not ok and tostring(err):find('Cannot reverse "example.test": not an IP address', 1, true), tostring(err))
      kumo.dns.set_mta_sts_enabled(false)
      kumo.dns.set_mta_sts_enabled(true)
      ok, err = pcall(kumo.dns.set_mta_sts_enabled, 'yes')
      assert(not ok and tostring(err):find('expected a boolean', 1, true), tostring(err))
      return 'ok'
    end)
  `);
  assert.equal(await p.run("t"), "ok");
});

Deno.test("kumo.dns.set_mx_timeout bounds lookups against a silent server", async () => {
  await using dns = await startDnsServer({ drop: ["silent1s.test", "silent05.test"] });
  await using p = await loadTestPolicy(`
    kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
    kumo.on('t', function(d)
      kumo.dns.set_mx_timeout(d)
      -- a fresh name each time: a timeout is cached like any failure
      local ok, err = pcall(kumo.dns.lookup_mx, 'silent' .. tostring(d):gsub('%W', '') .. '.test')
      return tostring(err)
    end)
  `);
  assert.match(
    String(await p.run("t", "1s")),
    /Cannot resolve MX for "silent1s\.test": timed out after 1000 ms/,
  );
  assert.match(String(await p.run("t", 0.5)), /timed out after 500 ms/);
  await assert.rejects(() => p.run("t", "soon"), /Cannot parse duration "soon"/);
});

Deno.test("kumo.dns.set_mx_negative_cache_ttl decides whether NXDOMAIN is asked again", async () => {
  await using dns = await startDnsServer({ zones: {} });
  await using p = await loadTestPolicy(`
    kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
    kumo.on('t', function(name, ttl)
      if ttl ~= nil then kumo.dns.set_mx_negative_cache_ttl(ttl) end
      for i = 1, 3 do pcall(kumo.dns.lookup_txt, name) end
    end)
  `);
  const asked = (name: string) => dns.queries.filter((q) => q.name === name).length;
  await p.run("t", "cached.test", null);
  assert.equal(asked("cached.test"), 1, "default: the NXDOMAIN is cached");
  await p.run("t", "uncached.test", 0);
  assert.equal(asked("uncached.test"), 3, "ttl 0: every lookup asks the server");
});

Deno.test("kumo.dns.set_mx_concurrency_limit queues lookups beyond the limit", async () => {
  await using dns = await startDnsServer({
    drop: ["silent.test"],
    zones: { "ok.test": { TXT: ["hi"] } },
  });
  for (const [limit, expected] of [[1, ["silent", "ok"]], [8, ["ok", "silent"]]] as const) {
    await using p = await loadTestPolicy(`
      kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
      kumo.dns.set_mx_timeout '1s'
      kumo.dns.set_mx_concurrency_limit(${limit})
      kumo.on('t', function(name) pcall(kumo.dns.lookup_txt, name) end)
    `);
    const done: string[] = [];
    // The silent lookup starts first; with one slot the answerable one waits for its timeout.
    await Promise.all([
      p.run("t", "silent.test").then(() => done.push("silent")),
      p.run("t", "ok.test").then(() => done.push("ok")),
    ]);
    assert.deepEqual(done, expected, `limit ${limit}`);
  }
  await using p = await loadTestPolicy(
    `kumo.on('t', function() kumo.dns.set_mx_concurrency_limit(0) end)`,
  );
  await assert.rejects(
    () => p.run("t"),
    /set_mx_concurrency_limit: invalid value 0: expected a positive integer/,
  );
});

Deno.test("kumo.dns.load_resolv_conf reads a resolv.conf into configure_resolver's shape", async () => {
  await using p = await loadTestPolicy(`
    kumo.on('t', function(path)
      local cfg = kumo.dns.load_resolv_conf(path)
      kumo.dns.configure_resolver(cfg) -- accepted as it is
      return kumo.json_encode(cfg)
    end)
    kumo.on('missing', function(path) return kumo.dns.load_resolv_conf(path) end)
  `);
  await Deno.writeTextFile(
    `${p.dir}/resolv.conf`,
    "# comment\nnameserver 127.0.0.53\nnameserver ::1\ndomain corp.test\n" +
      "search a.test b.test\noptions ndots:2 timeout:3 attempts:4 edns0 rotate\n",
  );
  assert.deepEqual(JSON.parse(String(await p.run("t", `${p.dir}/resolv.conf`))), {
    name_servers: ["127.0.0.53:53", "[::1]:53"],
    domain: "corp.test",
    search: ["a.test", "b.test"],
    options: { ndots: 2, timeout: "3s", attempts: 4, edns0: true },
  });
  await assert.rejects(
    () => p.run("missing", `${p.dir}/nope.conf`),
    /Cannot read resolv\.conf ".*nope\.conf"/,
  );
});

const ZONES = `
  kumo.dns.configure_test_resolver {
    [[
$ORIGIN example.test.
$TTL 300
@        600 MX 10 mail.example.test.
@        IN 600 MX 5 mx1          ; relative target
mail     600 A  127.0.0.1
         600 AAAA ::1            ; same owner as the line above
mx1      A 127.0.0.2
txt      60 TXT "v=spf1" " -all"
alias    CNAME mail
soa      SOA ns hostmaster ( 1 3600
             600 86400 300 )
xn--mnchen-3ya 600 MX 10 münchen.example.test.
münchen  600 A 127.0.0.3
]],
    { zone = [[
$ORIGIN 0.0.127.in-addr.arpa.
1 30 IN PTR localhost.
]], secure = true },
  }
`;

Deno.test("kumo.dns.configure_test_resolver answers from zone text only", async () => {
  await using p = await loadTestPolicy(`${ZONES}
    local function j(v) return kumo.json_encode(v) end
    kumo.on('t', function()
      local mx = kumo.dns.lookup_mx 'example.test'
      assert(j(mx.hosts) == '["mx1.example.test.","mail.example.test."]', j(mx.hosts))
      assert(mx.site_name == '(mx1|mail).example.test', mx.site_name)
      assert(j(kumo.dns.lookup_addr 'mail.example.test') == '["127.0.0.1","::1"]', j(kumo.dns.lookup_addr 'mail.example.test'))
      assert(j(kumo.dns.lookup_addr 'alias.example.test') == '["127.0.0.1","::1"]', 'CNAME followed')
      assert(j(kumo.dns.lookup_txt 'txt.example.test') == '["v=spf1 -all"]', j(kumo.dns.lookup_txt 'txt.example.test'))
      assert(j(kumo.dns.lookup_ptr '127.0.0.1') == '["localhost."]', 'PTR')
      assert(kumo.dns.ptr_host '127.0.0.1' == 'localhost.', 'ptr_host')
      assert(j(kumo.dns.lookup_mx('xn--mnchen-3ya.example.test').hosts) == '["xn--mnchen-3ya.example.test."]', 'U-label target')
      assert(j(kumo.dns.lookup_addr 'xn--mnchen-3ya.example.test') == '["127.0.0.3"]', 'U-label owner')
      -- an existing name without the type: no data; unknown names: NXDOMAIN
      assert(#kumo.dns.lookup_txt 'mail.example.test' == 0, 'NODATA')
      assert(#kumo.dns.lookup_txt 'soa.example.test' == 0, 'other types make a name exist')
      local ok, err = pcall(kumo.dns.lookup_addr, 'nope.example.test')
      assert(not ok and tostring(err):find('NXDOMAIN', 1, true), tostring(err))
      ok, err = pcall(kumo.dns.lookup_mx, 'elsewhere.test')
      assert(not ok and tostring(err):find('NXDOMAIN', 1, true), tostring(err))
      return 'ok'
    end)
  `);
  assert.equal(await p.run("t"), "ok");
});

Deno.test("configure_test_resolver: servfail list, the Test form of configure_resolver, bad zones", async () => {
  await using p = await loadTestPolicy(`
    kumo.dns.configure_test_resolver {
      zones = { '$ORIGIN a.test.\\n@ 60 A 127.0.0.9\\n' },
      servfail = { 'broken.a.test' },
    }
    kumo.on('t', function()
      assert(kumo.dns.lookup_addr('a.test')[1] == '127.0.0.9', 'zones')
      local ok, err = pcall(kumo.dns.lookup_addr, 'broken.a.test')
      assert(not ok and tostring(err):find('SERVFAIL', 1, true), tostring(err))
      kumo.dns.configure_resolver { Test = { zones = { '$ORIGIN b.test.\\n@ 60 TXT "hello"\\n' } } }
      assert(kumo.dns.lookup_txt('b.test')[1] == 'hello', 'Test form')
      ok, err = pcall(kumo.dns.lookup_addr, 'a.test')
      assert(not ok and tostring(err):find('NXDOMAIN', 1, true), 'the new zones replace the old: ' .. tostring(err))
      return 'ok'
    end)
    kumo.on('bad', function(z) kumo.dns.configure_test_resolver(z) end)
  `);
  assert.equal(await p.run("t"), "ok");
  await assert.rejects(
    () => p.run("bad", ["$ORIGIN c.test.\n@ 60 A 300.1.1.1\n"]),
    /Cannot parse test zone 1 line 2: invalid A address "300\.1\.1\.1"/,
  );
  await assert.rejects(
    () => p.run("bad", { zones: [], bogus: 1 }),
    /unknown field `bogus`, expected `zones` or `servfail`/,
  );
});

// ---------------------------------------------------------------------------
// Trace header and RFC 3464 reports

Deno.test("kumo.apply_supplemental_trace_header adds the listener's X-KumoRef", async () => {
  await using p = await loadTestPolicy(`
    local function make()
      return kumo.make_message('sender@example.com', 'recip@example.com', 'Subject: hello\\r\\n\\r\\nHi')
    end
    kumo.on('t', function()
      local m = make()
      kumo.apply_supplemental_trace_header(m)
      assert(m:get_first_named_header_value 'X-KumoRef'
        == 'eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50IjoicmVjaXBAZXhhbXBsZS5jb20ifQ==', m:get_data())
      assert(m:get_data():find('Subject: hello\\r\\n\\r\\nHi$'), 'prepended above the existing header')

      m = make()
      m:set_meta('woot', 'woot')
      kumo.apply_supplemental_trace_header(m, { include_meta_names = { 'woot', 'absent' } })
      -- longer values are folded; the base64 itself is upstream's
      local v = m:get_first_named_header_value('X-KumoRef'):gsub('%s', '')
      assert(v == 'eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50IjoicmVjaXBAZXhhbXBsZS5jb20iLCJ3b290Ijoid29vdCJ9', v)
      assert(m:get_data():find('^X%-KumoRef: [^\\r]+\\r\\n\\t'), 'folded with CRLF TAB')

      m = make()
      kumo.apply_supplemental_trace_header(m, { header_name = 'X-Trace' })
      assert(m:get_first_named_header_value 'X-Trace' ~= nil and m:get_first_named_header_value 'X-KumoRef' == nil, 'header_name')

      m = make()
      kumo.apply_supplemental_trace_header(m, { supplemental_header = false })
      assert(m:get_data() == 'Subject: hello\\r\\n\\r\\nHi', 'supplemental_header = false adds nothing')

      local ok, err = pcall(kumo.apply_supplemental_trace_header, make(), { header = 'x' })
      assert(not ok and tostring(err):find('unknown field \`header\`', 1, true), tostring(err))
      ok, err = pcall(kumo.apply_supplemental_trace_header, 'not a message')
      assert(not ok and tostring(err):find('expected a message', 1, true), tostring(err))
      return 'ok'
    end)
  `);
  assert.equal(await p.run("t"), "ok");
});

const NDR_POLICY = `
  local PARAMS = {
    include_original_message = 'FullContent', enable_bounce = true, enable_expiration = true,
    stable_content = true, reporting_mta = { mta_type = 'dns', name = 'mta1.example.test' },
  }
  local function record(kind, extra)
    local r = {
      type = kind, sender = 'sender@sender.example.test', recipient = 'recip@target.example.test',
      created = 1057049557, timestamp = 1057056757, delivery_protocol = 'ESMTP',
      response = { code = 550, enhanced_code = { class = 5, subject = 7, detail = 1 }, content = 'no thanks' },
      peer_address = { name = 'target.example.test', addr = '42.42.42.42' },
    }
    for k, v in pairs(extra or {}) do r[k] = v end
    return r
  end
  local function original()
    return kumo.make_message('sender@sender.example.test', 'recip@target.example.test',
      'Content-Type: text/plain;\\r\\n\\tcharset="us-ascii"\\r\\nSubject: Hello!\\r\\n\\r\\nhello there')
  end
`;

Deno.test("kumo.generate_rfc3464_message builds upstream's bounce report", async () => {
  await using p = await loadTestPolicy(`${NDR_POLICY}
    kumo.on('bounce', function()
      local ndr = kumo.generate_rfc3464_message(PARAMS, original(), record('Bounce'))
      assert(ndr:sender().email == '', 'from the null sender')
      assert(ndr:recipient().email == 'sender@sender.example.test', 'to the original sender')
      -- our own report parser reads it back
      local r = ndr:parse_rfc3464()
      assert(r.per_message.reporting_mta.name == 'mta1.example.test', kumo.json_encode(r.per_message))
      local rr = r.per_recipient[1]
      assert(rr.action == 'failed' and rr.status.class == 5 and rr.status.subject == 7, kumo.json_encode(rr))
      assert(rr.final_recipient.recipient == 'recip@target.example.test', kumo.json_encode(rr.final_recipient))
      return ndr:get_data()
    end)
  `);
  const want = [
    "Content-Type: multipart/report;",
    '\tboundary="report-boundary";',
    '\treport-type="delivery-status"',
    "Subject: Returned mail",
    "MIME-Version: 1.0",
    "Message-ID: <UUID@mta1.example.test>",
    "To: sender@sender.example.test",
    "From: Mail Delivery Subsystem <mailer-daemon@mta1.example.test>",
    "",
    "--report-boundary",
    "Content-Type: text/plain;",
    '\tcharset="us-ascii"',
    "",
    "The message was received at Tue, 1 Jul 2003 08:52:37 +0000",
    "from sender@sender.example.test and addressed to recip@target.example.test.",
    "While communicating with target.example.test (42.42.42.42):",
    "Response: 550 5.7.1 no thanks",
    "",
    "The message will be deleted from the queue.",
    "No further attempts will be made to deliver it.",
    "--report-boundary",
    "Content-Type: message/delivery-status;",
    '\tcharset="us-ascii"',
    "",
    "Reporting-MTA: dns; mta1.example.test",
    "Arrival-Date: Tue, 1 Jul 2003 08:52:37 +0000",
    "",
    "Final-Recipient: rfc822;recip@target.example.test",
    "Action: failed",
    "Status: 5.7.1 no thanks",
    "Remote-MTA: dns; target.example.test",
    "Diagnostic-Code: smtp; 550 5.7.1 no thanks",
    "Last-Attempt-Date: Tue, 1 Jul 2003 10:52:37 +0000",
    "",
    "--report-boundary",
    "Content-Type: message/rfc822",
    "",
    "Content-Type: text/plain;",
    '\tcharset="us-ascii"',
    "Subject: Hello!",
    "",
    "hello there",
    "--report-boundary--",
    "",
  ].join("\r\n");
  assert.equal(await p.run("bounce"), want);
});

Deno.test("generate_rfc3464_message: expiration with headers only, and when no report applies", async () => {
  await using p = await loadTestPolicy(`${NDR_POLICY}
    kumo.on('expiration', function()
      local params = PARAMS
      params.include_original_message = 'HeadersOnly'
      local long = 'Next delivery time would be at SOME TIME which exceeds the expiry time EXPIRES configured via set_scheduling'
      local rec = record('Expiration', {
        response = { code = 551, enhanced_code = { class = 5, subject = 4, detail = 7 }, content = long },
      })
      rec.delivery_protocol, rec.peer_address = nil, nil
      local ndr = kumo.generate_rfc3464_message(params, original(), rec)
      return ndr:get_data()
    end)
    kumo.on('none', function()
      local out = {}
      out[#out + 1] = tostring(kumo.generate_rfc3464_message(PARAMS, nil, record('Delivery')))
      out[#out + 1] = tostring(kumo.generate_rfc3464_message(PARAMS, nil, record('Bounce', { sender = '' })))
      out[#out + 1] = tostring(kumo.generate_rfc3464_message(PARAMS, nil, record('Bounce', { delivery_protocol = 'Maildir' })))
      local p2 = { include_original_message = 'No', reporting_mta = { mta_type = 'dns', name = 'x.test' } }
      out[#out + 1] = tostring(kumo.generate_rfc3464_message(p2, nil, record('Bounce')))
      return table.concat(out, ',')
    end)
    kumo.on('bad', function(params, rec) return kumo.generate_rfc3464_message(params, nil, rec or record('Bounce')) end)
  `);
  const text = String(await p.run("expiration"));
  assert.ok(
    text.includes(
      "Content-Transfer-Encoding: quoted-printable\r\n\r\nThe message was received at Tue, 1 Jul 2003 08:52:37 +0000\r\n" +
        "from sender@sender.example.test and addressed to recip@target.example.test.\r\n" +
        "Status: 551 5.4.7 Next delivery time would be at SOME TIME which exceeds th=\r\n" +
        "e expiry time EXPIRES configured via set_scheduling\r\n" +
        "The message will be deleted from the queue.\r\n",
    ),
    text,
  );
  assert.ok(
    text.includes(
      "--report-boundary\r\nContent-Type: text/rfc822-headers\r\n\r\n" +
        'Content-Type: text/plain;\r\n\tcharset="us-ascii"\r\nSubject: Hello!\r\n--report-boundary--\r\n',
    ),
    text,
  );
  assert.ok(!text.includes("Remote-MTA"), "no peer, no Remote-MTA");
  // not enabled / null sender / not ESMTP / bounce not enabled: nil
  assert.equal(await p.run("none"), "nil,nil,nil,nil");
  await assert.rejects(
    () =>
      p.run("bad", {
        include_original_message: "Some",
        reporting_mta: { mta_type: "dns", name: "x" },
      }),
    /unknown variant `Some`/,
  );
  await assert.rejects(
    () =>
      p.run("bad", {
        include_original_message: "No",
        reporting_mta: { mta_type: "dns", name: "x" },
        extra: 1,
      }),
    /unknown field `extra`/,
  );
  await assert.rejects(
    () =>
      p.run("bad", {
        include_original_message: "No",
        enable_bounce: true,
        reporting_mta: { mta_type: "dns", name: "x" },
      }, {
        type: "Bounce",
        sender: "a@b.test",
      }),
    /log_record\.recipient is missing/,
  );
});

Deno.test("kumo.format_queue_config_toml / format_egress_path_config_toml round-trip", async () => {
  await using p = await loadTestPolicy(`
    kumo.on('t', function()
      local q = kumo.make_queue_config {
        retry_interval = '5m', max_message_rate = '10/s',
        protocol = { smtp = { mx_list = { 'mx.example.test' } } },
      }
      local text = kumo.format_queue_config_toml(q)
      assert(text:find('retry_interval = "5m"', 1, true) and text:find('[protocol.smtp]', 1, true), text)
      local back = kumo.make_queue_config(kumo.serde.toml_parse(text))
      assert(back.retry_interval == '5m' and back.max_message_rate == '10/s', 'round trip')
      assert(back.protocol.smtp.mx_list[1] == 'mx.example.test', 'nested table')
      -- a plain table (as invoke_get_* returns) is validated first
      assert(kumo.format_queue_config_toml({ max_age = '1h' }):find('max_age = "1h"', 1, true), 'table')
      local ok, err = pcall(kumo.format_queue_config_toml, { bogus = 1 })
      assert(not ok and tostring(err):find('unknown field', 1, true), tostring(err))
      ok, err = pcall(kumo.format_queue_config_toml, kumo.make_egress_path {})
      assert(not ok and tostring(err):find('expected a QueueConfig object', 1, true), tostring(err))
      local e = kumo.format_egress_path_config_toml(kumo.make_egress_path { connection_limit = 5, prohibited_hosts = {} })
      local eback = kumo.make_egress_path(kumo.serde.toml_parse(e))
      assert(eback.connection_limit == 5 and #eback.prohibited_hosts == 0, e)
      return 'ok'
    end)
  `);
  assert.equal(await p.run("t"), "ok");
});

Deno.test("accepted-and-recorded init knobs validate their argument", async () => {
  await using p = await loadTestPolicy(`
    kumo.on('t', function()
      kumo.configure_accounting_db_path ':memory:'
      kumo.suspend_delivery_when_spool_unhealthy(false)
      local ok, err = pcall(kumo.configure_accounting_db_path, nil)
      assert(not ok and tostring(err):find('expected a path string', 1, true), tostring(err))
      ok, err = pcall(kumo.suspend_delivery_when_spool_unhealthy, 'no')
      assert(not ok and tostring(err):find('invalid value no: expected a boolean', 1, true), tostring(err))
      return 'ok'
    end)
  `);
  assert.equal(await p.run("t"), "ok");
});
