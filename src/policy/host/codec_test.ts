import assert from "node:assert/strict";
import { loadTestPolicy } from "./load_test_policy.ts";

Deno.test("kumo.digest results carry hex/base64 forms and hmac works", async () => {
  await using p = await loadTestPolicy(`
    kumo.on('t', function()
      local d = kumo.digest.sha256('hello')
      assert(d.hex == '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824', d.hex)
      assert(tostring(d) == d.hex, 'tostring')
      assert(d.base64 == 'LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=', d.base64)
      assert(d.base64url_nopad == 'LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ', d.base64url_nopad)
      assert(#d.bytes == 32, 'bytes are binary-exact: ' .. #d.bytes)
      assert(kumo.encode.hex_encode(d.bytes) == d.hex, 'bytes round trip')
      assert(kumo.digest.sha256('hel', 'lo') == d, 'varargs concatenate')
      assert(kumo.digest.md5('').hex == 'd41d8cd98f00b204e9800998ecf8427e', 'md5')
      assert(kumo.digest.sha1('abc').hex == 'a9993e364706816aba3e25717850c26c9cd0d89d', 'sha1')
      assert(#kumo.digest.sha512('x').hex == 128 and #kumo.digest.sha384('x').hex == 96, 'sha384/512')
      assert(kumo.digest.crc32('123456789').hex == 'cbf43926', kumo.digest.crc32('123456789').hex)
      local h = kumo.digest.hmac_sha256('key', 'The quick brown fox jumps over the lazy dog')
      assert(h.hex == 'f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8', h.hex)
      assert(#kumo.digest.hmac_sha1('k', 'm').hex == 40 and #kumo.digest.hmac_sha512('k', 'm').hex == 128, 'hmac')
      return 'ok'
    end)
  `);
  assert.equal(await p.run("t"), "ok");
});

Deno.test("kumo.encode round-trips text and binary data", async () => {
  await using p = await loadTestPolicy(`
    kumo.on('t', function()
      local e = kumo.encode
      assert(e.base64_encode('hello?') == 'aGVsbG8/', e.base64_encode('hello?'))
      assert(e.base64url_encode('hello?') == 'aGVsbG8_', 'url')
      assert(e.base64_decode('aGVsbG8/') == 'hello?', 'decode')
      assert(e.base64_encode_nopad('a') == 'YQ', 'nopad')
      assert(e.base32_encode('foobar') == 'MZXW6YTBOI======', e.base32_encode('foobar'))
      assert(e.base32_decode('MZXW6YTBOI======') == 'foobar', 'b32 decode')
      assert(e.base32hex_encode('foobar') == 'CPNMUOJ1E8======', 'b32hex')
      assert(e.hex_encode('AB') == '4142' and e.hex_decode('4142') == 'AB', 'hex')
      local bin = '\\0\\255\\128abc\\1'
      assert(e.base64_decode(e.base64_encode(bin)) == bin, 'binary round trip via base64')
      assert(e.hex_encode(bin) == '00ff80616263' .. '01', e.hex_encode(bin))
      assert(e.hex_decode('00ff') == '\\0\\255', 'binary decode')
      assert(e.charset_decode('iso-8859-1', '\\233t\\233') == 'été', 'latin1 decode')
      assert(e.charset_encode('iso-8859-1', 'été') == '\\233t\\233', 'latin1 encode')
      local ok, err = pcall(e.hex_decode, 'zz')
      assert(not ok and tostring(err):find('invalid hex'), tostring(err))
      return 'ok'
    end)
  `);
  assert.equal(await p.run("t"), "ok");
});

Deno.test("kumo.uuid makes and parses UUIDs of each version", async () => {
  await using p = await loadTestPolicy(`
    kumo.on('t', function()
      local u = kumo.uuid.parse '69994630-3e27-11ef-91fc-cc28aa0a5c5a'
      assert(tostring(u) == '69994630-3e27-11ef-91fc-cc28aa0a5c5a', tostring(u))
      assert(u.simple == '699946303e2711ef91fccc28aa0a5c5a', u.simple)
      assert(u.braced == '{69994630-3e27-11ef-91fc-cc28aa0a5c5a}', u.braced)
      assert(u.urn == 'urn:uuid:69994630-3e27-11ef-91fc-cc28aa0a5c5a', u.urn)
      assert(#u.bytes == 16, 'bytes')
      assert(kumo.uuid.parse(u.simple) == u, 'parse simple')
      local seen = {}
      for _, v in ipairs({ 'new_v1', 'new_v4', 'new_v6', 'new_v7' }) do
        local x = kumo.uuid[v]()
        local ver = x.hyphenated:sub(15, 15)
        assert(ver == v:sub(6, 6), v .. ' version nibble ' .. ver)
        assert(x.hyphenated:sub(20, 20):match('[89ab]'), v .. ' variant')
        assert(not seen[x.simple], 'unique')
        seen[x.simple] = true
      end
      assert(kumo.uuid.new_v7() ~= kumo.uuid.new_v7(), 'v7 unique')
      local ok, err = pcall(kumo.uuid.parse, 'nope')
      assert(not ok and tostring(err):find('Cannot parse UUID'), tostring(err))
      return 'ok'
    end)
  `);
  assert.equal(await p.run("t"), "ok");
});

Deno.test("kumo.regex translates Rust syntax and offers the Regex methods", async () => {
  await using p = await loadTestPolicy(String.raw`
    kumo.on('t', function()
      local re = kumo.regex.compile "'(?<title>[^']+)'\\s+\\((?P<year>\\d{4})\\)"
      local cap = re:captures "Not my favorite movie: 'Citizen Kane' (1941)."
      assert(cap[0] == "'Citizen Kane' (1941)", tostring(cap[0]))
      assert(cap[1] == 'Citizen Kane' and cap[2] == '1941', 'positional')
      assert(cap.title == 'Citizen Kane' and cap.year == '1941', 'named')
      assert(re:captures('nothing') == nil, 'no match')
      local ci = kumo.regex.compile '(?i)^hello'
      assert(ci:is_match('HELLO world') and not ci:is_match('say hello'), '(?i) flag')
      local d = kumo.regex.compile '\\d+'
      assert(d:find('ab 12 cd 345') == '12', 'find')
      local all = d:find_all('ab 12 cd 345')
      assert(#all == 2 and all[2] == '345', 'find_all')
      assert(d:replace('a1b22', 'N') == 'aNb22', 'replace')
      assert(d:replace_all('a1b22', '<$0>') == 'a<1>b<22>', d:replace_all('a1b22', '<$0>'))
      local sw = kumo.regex.compile '(?P<first>\\w+) (?P<last>\\w+)'
      assert(sw:replace('John Smith', '$' .. '{last}, $first') == 'Smith, John', 'named replacement')
      local parts = kumo.regex.compile('[,;]\\s*'):split('a, b;c')
      assert(#parts == 3 and parts[3] == 'c', 'split')
      assert(kumo.regex.compile('\\Aab\\z'):is_match('ab') and not kumo.regex.compile('\\Aab\\z'):is_match('ab\n'), 'anchors')
      local ok, err = pcall(kumo.regex.compile, '(')
      assert(not ok and tostring(err):find('Cannot compile regex'), tostring(err))
      local cached = kumo.memoize(function() return kumo.regex.compile 'x+' end, { name = 're', ttl = '1m', capacity = 4 })
      assert(cached():is_match('xx') and cached():is_match('x'), 'regex survives memoize')
      return 'ok'
    end)
  `);
  assert.equal(await p.run("t"), "ok");
});
