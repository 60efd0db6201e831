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
