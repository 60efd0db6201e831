/**
 * The Message API as policy sees it (lua-api.md §7.1–7.3): Lua handlers in a
 * real PolicyEngine call the `msg:*` methods on a real Message and return
 * what they saw; the spool-control methods run against real LocalDisk
 * spools, `dkim_verify` against keys on the test's own DNS server. The
 * last test drives the same methods from
 * `smtp_server_message_received` through the real program and reads what
 * reached the spool.
 */
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { PolicyEngine } from "../src/policy/engine.ts";
import { buildCatalogue } from "../src/policy/catalogue.ts";
import { newServerConfig } from "../src/policy/server_config.ts";
import { Resolver } from "../src/dns/resolver.ts";
import { offlineResolver } from "./support/offline_resolver.ts";
import type { PolicyRuntime } from "../src/policy/runtime.ts";
import { Message } from "../src/message/message.ts";
import { LocalDiskSpool } from "../src/spool/local_disk_spool.ts";
import type { Spool, SpoolPair, StoreOptions } from "../src/spool/spool.ts";
import { startDnsServer } from "./support/dns_server.ts";
import { idsOf, RawSmtp, readSpool, startKumo } from "./support/kumo_process.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));

interface Loaded extends AsyncDisposable {
  engine: PolicyEngine;
  runtime: PolicyRuntime;
  dir: string;
}

/** Load `source` into a real engine whose runtime may be given spools later. */
async function load(source: string, resolver = offlineResolver()): Promise<Loaded> {
  const dir = await Deno.makeTempDir({ prefix: "kumo-luamsg-" });
  await Deno.writeTextFile(`${dir}/init.lua`, source);
  const runtime: PolicyRuntime = {};
  // deno-lint-ignore prefer-const
  let engine: PolicyEngine | undefined;
  engine = await PolicyEngine.load({
    policyPath: `${dir}/init.lua`,
    version: "test",
    catalogue: buildCatalogue(() => engine, newServerConfig(), resolver, runtime),
  });
  const eng = engine;
  return {
    engine: eng,
    runtime,
    dir,
    async [Symbol.asyncDispose]() {
      eng.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function message(data: string, recipients = ["rcpt@dest.test"]): Message {
  return new Message({ sender: "sender@src.test", recipients, data: enc(data) });
}

Deno.test("msg address headers: fields, list, tostring JSON and errors for several addresses", async () => {
  await using p = await load(`
kumo.on('t', function(msg)
  local out = {}
  local f = msg:from_header()
  out.from = { f.user, f.domain, f.email, f.name, tostring(f) }
  out.from_list_n = #f.list
  local t = msg:to_header()
  out.to_n = #t.list
  out.to_json = tostring(t)
  out.to_entry = { t.list[2].user, t.list[2].domain, t.list[2].email, tostring(t.list[2]) }
  out.to_entry1_name = tostring(t.list[1].name)
  local ok, err = pcall(function() return t.email end)
  out.to_email_err = { ok, err }
  local g = msg:get_address_header('Cc')
  out.cc_json = tostring(g)
  out.cc_n = #g.list
  ok, err = pcall(function() return g.domain end)
  out.cc_err = err
  out.bare = msg:get_address_header('reply-to').email
  out.bare_name = msg:get_address_header('Reply-To').name == nil
  out.missing = msg:get_address_header('Sender') == nil
  out.unknown_field = f.nonsense == nil
  return out
end)`);
  const msg = message(
    'From: "Smith, John" <john.smith@Example.test>\r\n' +
      "To: ann@a.test, Bob <bob@b.test>\r\n" +
      "Cc: team: c1@c.test, c2@c.test;\r\n" +
      "Reply-To: plain@r.test\r\n" +
      "Subject: x\r\n\r\nbody\r\n",
  );
  const out = await p.engine.callOrThrow("t", "m", [msg]) as Record<string, unknown>;
  assert.deepEqual(out.from, [
    "john.smith",
    "Example.test",
    "john.smith@Example.test",
    "Smith, John",
    '[{"Address":{"name":"Smith, John","address":"john.smith@Example.test"}}]',
  ]);
  assert.equal(out.from_list_n, 1);
  assert.equal(out.to_n, 2);
  assert.equal(
    out.to_json,
    '[{"Address":{"name":null,"address":"ann@a.test"}},' +
      '{"Address":{"name":"Bob","address":"bob@b.test"}}]',
  );
  assert.deepEqual(out.to_entry, [
    "bob",
    "b.test",
    "bob@b.test",
    '{"name":"Bob","address":"bob@b.test"}',
  ]);
  assert.equal(out.to_entry1_name, "nil");
  const [ok, err] = out.to_email_err as [boolean, string];
  assert.equal(ok, false);
  assert.match(err, /Cannot read AddressHeader field "email": the header holds 2 entries/);
  assert.equal(
    out.cc_json,
    '[{"Group":{"name":"team","addresses":[{"name":null,"address":"c1@c.test"},' +
      '{"name":null,"address":"c2@c.test"}]}}]',
  );
  assert.equal(out.cc_n, 2, "list flattens the group");
  assert.match(String(out.cc_err), /field "domain": the header is a group/);
  assert.equal(out.bare, "plain@r.test");
  assert.equal(out.bare_name, true, "no display name → nil");
  assert.equal(out.missing, true);
  assert.equal(out.unknown_field, true);
});

Deno.test("msg envelope: sender, recipient nil / single / array, setters, recipient_list", async () => {
  await using p = await load(`
kumo.on('t', function(msg, step)
  if step == 'one' then
    local r = msg:recipient()
    return { tostring(r), r.user, r.domain, r.email, msg:sender().email, tostring(msg:sender()) }
  elseif step == 'many' then
    msg:set_recipient({ 'a@x.test', msg:sender() })
    local r = msg:recipient()
    local list = msg:recipient_list()
    return { #r, tostring(r[1]), tostring(r[2]), #list, tostring(list[2]) }
  elseif step == 'none' then
    msg:set_recipient({})
    return { msg:recipient() == nil, #msg:recipient_list() }
  elseif step == 'set' then
    msg:set_sender('New.Sender@Src.TEST')
    msg:set_recipient('Only@Dest.TEST')
    local s = msg:sender()
    return { s.user, s.domain, tostring(msg:recipient()), msg:recipient().domain }
  end
end)`);
  const msg = message("Subject: x\r\n\r\nbody\r\n", ["First@Dest.test"]);
  assert.deepEqual(await p.engine.callOrThrow("t", "ms", [msg, "one"]), [
    "First@Dest.test",
    "First",
    "Dest.test",
    "First@Dest.test",
    "sender@src.test",
    "sender@src.test",
  ]);
  assert.deepEqual(await p.engine.callOrThrow("t", "ms", [msg, "many"]), [
    2,
    "a@x.test",
    "sender@src.test",
    2,
    "sender@src.test",
  ]);
  assert.deepEqual(msg.recipients.map((r) => r.email), ["a@x.test", "sender@src.test"]);
  assert.deepEqual(await p.engine.callOrThrow("t", "ms", [msg, "none"]), [true, 0]);
  assert.deepEqual(await p.engine.callOrThrow("t", "ms", [msg, "set"]), [
    "New.Sender",
    "Src.TEST",
    "Only@Dest.TEST",
    "Dest.TEST",
  ]);
  assert.equal(msg.sender.email, "New.Sender@Src.TEST");
  assert.ok(msg.metaDirty);
});

Deno.test("msg headers and data: get/set data, prepend/append, lookups, removal, imports", async () => {
  await using p = await load(`
kumo.on('t', function(msg, step)
  if step == 'read' then
    local all = msg:get_all_headers()
    return {
      data = msg:get_data(),
      n = #all, first = all[1][1] .. '=' .. all[1][2], last = all[#all][1] .. '=' .. all[#all][2],
      received = msg:get_all_named_header_values('received'),
      subject = msg:get_first_named_header_value('SUBJECT'),
      none = msg:get_first_named_header_value('X-None') == nil,
      none_all = #msg:get_all_named_header_values('X-None'),
    }
  elseif step == 'edit' then
    msg:prepend_header('X-First', 'one')
    msg:append_header('X-Last', 'café', true)
    msg:remove_all_named_headers('received')
    msg:import_x_headers()
    msg:import_x_headers({ 'subject' })
    msg:remove_x_headers({ 'x-tenant' })
  elseif step == 'strip' then
    msg:remove_x_headers()
  elseif step == 'import' then
    msg:import_headers {
      { name = 'X-Campaign-Id', target = 'campaign_id' },
      { name = 'X-*', transform = 'camel_case', remove = true },
      { name = 'Received', match = 'all' },
      { name = 'Subject', match = 'first', transform = 'kebab_case' },
    }
  elseif step == 'bad_import' then
    msg:import_headers { { name = 'X-*', target = 'nope' } }
  elseif step == 'set' then
    msg:set_data('Subject: replaced\\r\\n\\r\\nnew body\\r\\n')
    return msg:get_data()
  elseif step == 'no_blank_line' then
    msg:append_header('X-A', 'b')
  end
end)`);
  const raw = "Received: from a\r\nReceived: from b\r\nSubject: Hello\r\n" +
    "X-Tenant: shop\r\nX-Campaign-Id: c7\r\n\r\nbody\r\n";
  const msg = message(raw);
  const read = await p.engine.callOrThrow("t", "ms", [msg, "read"]) as Record<string, unknown>;
  assert.equal(read.data, raw);
  assert.equal(read.n, 5);
  assert.equal(read.first, "Received=from a");
  assert.equal(read.last, "X-Campaign-Id=c7");
  assert.deepEqual(read.received, ["from a", "from b"]);
  assert.equal(read.subject, "Hello");
  assert.equal(read.none, true);
  assert.equal(read.none_all, 0);

  await p.engine.callOrThrow("t", "ms", [msg, "edit"]);
  assert.equal(
    dec(msg.data),
    "X-First: one\r\nSubject: Hello\r\nX-Campaign-Id: c7\r\n" +
      "X-Last: =?UTF-8?B?Y2Fmw6k=?=\r\n\r\nbody\r\n",
  );
  assert.equal(msg.getMeta("x_tenant"), "shop", "import_x_headers() before the removal");
  assert.equal(msg.getMeta("x_campaign_id"), "c7");
  assert.equal(msg.getMeta("x_first"), "one");
  assert.equal(msg.getMeta("subject"), "Hello", "a listed name needs no X- prefix");
  assert.ok(msg.dataDirty);

  await p.engine.callOrThrow("t", "ms", [msg, "strip"]);
  assert.equal(dec(msg.data), "Subject: Hello\r\n\r\nbody\r\n");

  const m2 = message(raw + "");
  m2.setData(
    "Received: from a\r\nReceived: from b\r\nSubject: Hello\r\nSubject: Again\r\n" +
      "X-Tenant: shop\r\nX-Campaign-Id: c7\r\nX-Mailer-Name: m\r\n\r\nbody\r\n",
  );
  await p.engine.callOrThrow("t", "ms", [m2, "import"]);
  assert.equal(m2.getMeta("campaign_id"), "c7", "target, and the first matching spec wins");
  assert.equal(m2.getMeta("xTenant"), "shop");
  assert.equal(m2.getMeta("xMailerName"), "m");
  assert.deepEqual(m2.getMeta("received"), ["from a", "from b"]);
  assert.equal(m2.getMeta("subject"), "Hello");
  assert.equal(m2.getMeta("x_campaign_id"), undefined);
  assert.equal(
    dec(m2.data),
    "Received: from a\r\nReceived: from b\r\nSubject: Hello\r\nSubject: Again\r\n" +
      "X-Campaign-Id: c7\r\n\r\nbody\r\n",
    "only the X-* spec removes, and X-Campaign-Id matched the first spec",
  );
  await assert.rejects(
    p.engine.callOrThrow("t", "ms", [m2, "bad_import"]),
    /spec 1: target "nope": not allowed with the wildcard name "X-\*"/,
  );

  assert.equal(
    await p.engine.callOrThrow("t", "ms", [msg, "set"]),
    "Subject: replaced\r\n\r\nnew body\r\n",
  );
  const bare = message("no header block at all");
  await assert.rejects(
    p.engine.callOrThrow("t", "ms", [bare, "no_blank_line"]),
    /Cannot append header "X-A": message has no blank line/,
  );
});

Deno.test("msg meta: set_meta / get_meta keep JSON values, nil is null, missing is nil", async () => {
  await using p = await load(`
kumo.on('t', function(msg)
  msg:set_meta('n', 42)
  msg:set_meta('s', 'text')
  msg:set_meta('t', { a = 1, list = { 'x', 'y' } })
  msg:set_meta('b', true)
  msg:set_meta('gone', nil)
  local t = msg:get_meta('t')
  return { msg:get_meta('n') + 1, msg:get_meta('s'), t.a, t.list[2], msg:get_meta('b'),
    msg:get_meta('gone') == nil, msg:get_meta('missing') == nil, msg:get_meta('received_from'),
    tostring(msg:get_meta('missing')), select('#', msg:get_meta('missing')) }
end)`);
  const msg = new Message({
    sender: "s@src.test",
    recipients: ["r@dest.test"],
    meta: { received_from: "127.0.0.1:1234" },
    data: enc("Subject: x\r\n\r\n"),
  });
  assert.deepEqual(await p.engine.callOrThrow("t", "m", [msg]), [
    43,
    "text",
    1,
    "y",
    true,
    true,
    true,
    "127.0.0.1:1234",
    "nil",
    1,
  ]);
  assert.deepEqual(msg.meta.t, { a: 1, list: ["x", "y"] });
  assert.equal(msg.meta.gone, null);
  assert.ok("gone" in msg.meta, "setting nil stores null");
  const rec = JSON.parse(dec(msg.metaBytes())!);
  assert.equal(rec.meta.n, 42);
});

/** A spool that records each store's `sync` flag before passing it on. */
function recording(inner: Spool, log: string[], name: string): Spool {
  return {
    load: (id) => inner.load(id),
    store: (id: string, bytes: Uint8Array, o: StoreOptions) => {
      log.push(`${name}:${o.sync ? "sync" : "nosync"}`);
      return inner.store(id, bytes, o);
    },
    remove: (id) => inner.remove(id),
    enumerate: () => inner.enumerate(),
    close: () => inner.close(),
  };
}

Deno.test("msg save / set_force_sync / shrink_data / shrink write through to the spools", async () => {
  await using p = await load(`
kumo.on('t', function(msg, step)
  if step == 'save' then msg:save()
  elseif step == 'force' then msg:set_force_sync(true); msg:set_meta('x', 1); msg:save()
  elseif step == 'shrink_data' then msg:shrink_data()
  elseif step == 'read' then return msg:get_first_named_header_value('Subject') .. '|' .. #msg:get_data()
  elseif step == 'shrink' then msg:set_meta('y', 2); msg:shrink()
  elseif step == 'unknown' then msg:no_such_method()
  end
end)`);
  const msg = message("Subject: keep me\r\n\r\nbody\r\n");
  await assert.rejects(
    p.engine.callOrThrow("t", "ms", [msg, "save"]),
    /Cannot call msg:save\(\): the spools are not open/,
  );
  const data = await LocalDiskSpool.open(`${p.dir}/data`);
  const meta = await LocalDiskSpool.open(`${p.dir}/meta`);
  const log: string[] = [];
  const spools: SpoolPair = {
    data: recording(data, log, "data"),
    meta: recording(meta, log, "meta"),
  };
  p.runtime.spools = spools;
  try {
    await p.engine.callOrThrow("t", "ms", [msg, "save"]);
    assert.deepEqual(log, ["data:nosync", "meta:nosync"], "data first, then meta; not forced");
    assert.equal(dec(await data.load(msg.id)), "Subject: keep me\r\n\r\nbody\r\n");
    assert.equal(JSON.parse(dec(await meta.load(msg.id))!).recipient, "rcpt@dest.test");
    assert.equal(msg.metaDirty || msg.dataDirty, false);

    log.length = 0;
    await p.engine.callOrThrow("t", "ms", [msg, "save"]);
    assert.deepEqual(log, [], "nothing changed: nothing written");

    await p.engine.callOrThrow("t", "ms", [msg, "force"]);
    assert.equal(msg.forceSync, true);
    assert.deepEqual(log, ["meta:sync"], "only the changed meta, synced");
    assert.equal(JSON.parse(dec(await meta.load(msg.id))!).meta.x, 1);

    // shrink_data drops the bytes; the next read loads them back from the spool.
    msg.setData("Subject: changed\r\n\r\nnew\r\n");
    log.length = 0;
    await p.engine.callOrThrow("t", "ms", [msg, "shrink_data"]);
    assert.equal(msg.data, null, "in-memory data released");
    assert.deepEqual(log, ["data:sync"]);
    assert.equal(dec(await data.load(msg.id)), "Subject: changed\r\n\r\nnew\r\n");
    assert.equal(await p.engine.callOrThrow("t", "ms", [msg, "read"]), "changed|25");
    assert.equal(dec(msg.data), "Subject: changed\r\n\r\nnew\r\n", "reloaded");

    log.length = 0;
    await p.engine.callOrThrow("t", "ms", [msg, "shrink"]);
    assert.equal(msg.data, null);
    assert.deepEqual(log, ["meta:sync"], "data was already in the spool");
    assert.equal(JSON.parse(dec(await meta.load(msg.id))!).meta.y, 2);

    // A shrunk message whose data is gone from the spool: a clear error.
    await data.remove(msg.id);
    await assert.rejects(
      p.engine.callOrThrow("t", "ms", [msg, "read"]),
      /Cannot load data of message "[0-9a-f]{32}": not in the data spool/,
    );
    await assert.rejects(
      p.engine.callOrThrow("t", "ms", [msg, "unknown"]),
      /Message has no method named "no_such_method"/,
    );
  } finally {
    await data.close();
    await meta.close();
  }
});

Deno.test("msg:add_authentication_results prepends upstream's Authentication-Results layout", async () => {
  await using p = await load(`
kumo.on('t', function(msg, step)
  if step == 'add' then
    msg:add_authentication_results('mx.test', {
      { method = 'dkim', result = 'pass', props = { ['header.d'] = 'shop.test', ['header.a'] = 'rsa-sha256' } },
      { method = 'spf', method_version = 1, result = 'fail', reason = 'not permitted', props = {} },
    })
  elseif step == 'none' then
    msg:add_authentication_results('mx.test', {})
  elseif step == 'bad' then
    msg:add_authentication_results('mx.test', { { method = 'dkim' } })
  end
end)`);
  const msg = message("Subject: x\r\n\r\nbody\r\n");
  await p.engine.callOrThrow("t", "ms", [msg, "add"]);
  await p.engine.callOrThrow("t", "ms", [msg, "none"]);
  assert.equal(
    dec(msg.data),
    "Authentication-Results: mx.test; none\r\n" +
      "Authentication-Results: mx.test;\r\n\tdkim=pass\r\n\theader.a=rsa-sha256\r\n" +
      '\theader.d=shop.test;\r\n\tspf/1=fail reason="not permitted"\r\n' +
      "Subject: x\r\n\r\nbody\r\n",
  );
  await assert.rejects(
    p.engine.callOrThrow("t", "ms", [msg, "bad"]),
    /Cannot use authentication result 1: "result" must be a non-empty string/,
  );
});

Deno.test("msg:dkim_verify checks each signature with keys from the test's DNS", async () => {
  const { privateKey, publicKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  const txt = `v=DKIM1; k=rsa; p=${
    publicKey.export({ type: "spki", format: "der" }).toString("base64")
  }`;
  await using dns = await startDnsServer({ zones: { "s1._domainkey.shop.test": { TXT: [txt] } } });
  const [ip, port] = dns.address.split(":");
  await using p = await load(
    `
local function signer(selector)
  return kumo.dkim.rsa_sha256_signer {
    domain = 'shop.test', selector = selector, headers = { 'From', 'Subject' },
    key = { key_data = ${JSON.stringify(pem)} },
  }
end
kumo.on('t', function(msg, step)
  if step == 'sign' then msg:dkim_sign(signer('s1'))
  elseif step == 'sign_unknown' then msg:dkim_sign(signer('gone'))
  elseif step == 'tamper' then msg:set_data(msg:get_data() .. 'tampered\\r\\n')
  elseif step == 'verify' then
    local results = msg:dkim_verify()
    msg:add_authentication_results('mx.test', results)
    return results
  end
end)`,
    new Resolver({ nameServers: [{ ip, port: Number(port) }] }),
  );
  const msg = message("From: a@shop.test\r\nSubject: signed\r\n\r\nbody\r\n");
  assert.deepEqual(await p.engine.callOrThrow("t", "ms", [msg, "verify"]) ?? {}, {}, "unsigned");
  await p.engine.callOrThrow("t", "ms", [msg, "sign"]);
  const [pass] = await p.engine.callOrThrow("t", "ms", [msg, "verify"]) as Record<
    string,
    unknown
  >[];
  assert.equal(pass.method, "dkim");
  assert.equal(pass.result, "pass");
  const props = pass.props as Record<string, string>;
  assert.equal(props["header.d"], "shop.test");
  assert.equal(props["header.s"], "s1");
  assert.equal(props["header.a"], "rsa-sha256");
  assert.equal(props["header.b"]?.length, 8);
  assert.match(
    dec(msg.data)!,
    /^Authentication-Results: mx\.test;\r\n\tdkim=pass\r\n\theader\.a=rsa-sha256\r\n\theader\.b=/,
  );

  await p.engine.callOrThrow("t", "ms", [msg, "tamper"]);
  await p.engine.callOrThrow("t", "ms", [msg, "sign_unknown"]);
  const results = await p.engine.callOrThrow("t", "ms", [msg, "verify"]) as Record<
    string,
    unknown
  >[];
  const bySelector = new Map(
    results.map((r) => [(r.props as Record<string, string>)["header.s"], r]),
  );
  assert.equal(bySelector.get("gone")?.result, "permerror", "no key in DNS");
  assert.equal(bySelector.get("gone")?.reason, "no key");
  assert.equal(bySelector.get("s1")?.result, "fail", "the body changed after signing");
  assert.equal(bySelector.get("s1")?.reason, "body hash did not verify");
});

Deno.test("every method of the spec's Message table (§7.1) exists but the MIME and ARC ones", async () => {
  await using p = await load(`
kumo.on('t', function(msg, names)
  local missing = {}
  for _, name in ipairs(names) do
    local ok, err = pcall(function() return msg[name](msg) end)
    if not ok and tostring(err):find('has no method named', 1, true) then
      missing[#missing + 1] = name
    end
  end
  return missing
end)`);
  const names = [
    "id",
    "sender",
    "set_sender",
    "recipient",
    "recipient_list",
    "set_recipient",
    "get_meta",
    "set_meta",
    "get_data",
    "set_data",
    "prepend_header",
    "append_header",
    "get_first_named_header_value",
    "get_all_named_header_values",
    "get_all_headers",
    "remove_all_named_headers",
    "remove_x_headers",
    "import_x_headers",
    "import_headers",
    "from_header",
    "to_header",
    "get_address_header",
    "dkim_sign",
    "check_fix_conformance",
    "queue_name",
    "num_attempts",
    "increment_num_attempts",
    "set_due",
    "set_scheduling",
    "import_scheduling_header",
    "parse_rfc3464",
    "parse_rfc5965",
    "save",
    "shrink",
    "shrink_data",
    "set_force_sync",
    "add_authentication_results",
    "dkim_verify",
  ];
  const msg = message("Subject: x\r\n\r\nbody\r\n");
  const missing = await p.engine.callOrThrow("t", "mt", [msg, names]);
  // an empty Lua table comes back as an empty object
  assert.deepEqual(Object.values(missing ?? {}), []);
});

Deno.test("Message methods from smtp_server_message_received reach the spool", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-luamsg-e2e-" });
  // slow.test is never answered: messages stay queued (and spooled) while we look.
  await using dns = await startDnsServer({ drop: ["slow.test"] });
  const policy = `local kumo = require 'kumo'
kumo.on('init', function()
  kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'mx.test' }
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'mx.test', deferred_spool = true }
  kumo.define_spool { name = 'data', path = '${dir}/spool/data' }
  kumo.define_spool { name = 'meta', path = '${dir}/spool/meta' }
  kumo.configure_local_logs { log_dir = '${dir}/logs' }
end)
kumo.on('get_queue_config', function() return kumo.make_queue_config { retry_interval = '1h' } end)
kumo.on('smtp_server_mail_from', function(sender, conn)
  -- conn_meta set before DATA is copied into the message's meta
  conn:set_meta('x_mail_from', tostring(sender))
  conn:set_meta('x_dropped', 'soon')
  conn:set_meta('x_dropped', nil)
end)
local hold_until = '${new Date(Date.now() + 3600_000).toISOString()}'
kumo.on('smtp_server_message_received', function(msg, conn)
  msg:set_scheduling { first_attempt = hold_until } -- no delivery attempt while we look
  local subject = msg:get_first_named_header_value('Subject')
  if subject == 'methods' then
    msg:import_x_headers()
    msg:remove_x_headers()
    msg:set_meta('x_from', msg:from_header().email)
    msg:set_meta('x_to_json', tostring(msg:to_header()))
    msg:set_meta('x_peer', conn:get_meta('received_from'))
    msg:set_meta('x_rcpt_before', tostring(msg:recipient()))
    msg:set_sender('changed@src.test')
    msg:set_recipient({ 'one@slow.test', 'two@slow.test' })
    msg:set_meta('x_rcpt_count', #msg:recipient())
    msg:prepend_header('X-Checked', 'yes')
    msg:append_header('X-Tail', 'end')
  elseif subject == 'save' then
    msg:set_force_sync(true)
    msg:save()
  elseif subject == 'shrink' then
    msg:shrink_data()
    msg:set_meta('x_len', #msg:get_data())
  end
end)
`;
  await using kumo = await startKumo(dir, policy);
  const ports = [...kumo.stderr().matchAll(/smtp listener on 127\.0\.0\.1:(\d+)/g)].map((m) =>
    Number(m[1])
  );
  const send = async (port: number, body: string): Promise<string> => {
    await using c = await RawSmtp.connect(port);
    assert.match((await c.reply())!, /^220 /);
    assert.match((await c.cmd("EHLO client.test"))!, /^250[ -]/);
    assert.equal(await c.cmd("MAIL FROM:<s@src.test>"), "250 OK <s@src.test>");
    assert.equal(await c.cmd("RCPT TO:<r@slow.test>"), "250 OK <r@slow.test>");
    assert.match((await c.cmd("DATA"))!, /^354 /);
    const [id] = idsOf(await c.cmd(body + "\r\n."));
    await c.cmd("QUIT");
    return id;
  };
  const meta = (id: string) => JSON.parse(dec(readSpool(`${dir}/spool/meta`, id))!);
  const data = (id: string) => dec(readSpool(`${dir}/spool/data`, id))!;

  const id1 = await send(
    ports[0],
    "From: Ann <ann@src.test>\r\nTo: r@slow.test, x@slow.test\r\nX-Campaign: spring\r\n" +
      "Subject: methods\r\n\r\nhello",
  );
  const m1 = meta(id1);
  assert.equal(m1.sender, "changed@src.test");
  assert.deepEqual(m1.recipient, ["one@slow.test", "two@slow.test"]);
  assert.equal(m1.meta.x_campaign, "spring");
  assert.equal(m1.meta.x_from, "ann@src.test");
  assert.equal(
    m1.meta.x_to_json,
    '[{"Address":{"name":null,"address":"r@slow.test"}},' +
      '{"Address":{"name":null,"address":"x@slow.test"}}]',
  );
  assert.match(m1.meta.x_peer, /^127\.0\.0\.1:\d+$/);
  assert.equal(m1.meta.x_mail_from, "s@src.test", "conn_meta copied into the message");
  assert.ok(!("x_dropped" in m1.meta), "conn_meta:set_meta(k, nil) removes the key");
  assert.equal(m1.meta.ehlo_domain, "client.test");
  assert.equal(m1.meta.reception_protocol, "ESMTP");
  assert.equal(m1.meta.x_rcpt_before, "r@slow.test");
  assert.equal(m1.meta.x_rcpt_count, 2);
  const d1 = data(id1);
  assert.match(
    d1,
    /^X-KumoRef: [^\r]*\r\n(?:\t[^\r]*\r\n)*X-Checked: yes\r\nReceived: from client\.test /,
  );
  assert.doesNotMatch(d1, /X-Campaign/);
  assert.match(d1, /\r\nSubject: methods\r\nX-Tail: end\r\n\r\nhello\r\n$/);

  // deferred_spool: nothing is written at reception, but msg:save() wrote through.
  const id2 = await send(ports[1], "Subject: save\r\n\r\nsaved body");
  assert.match(data(id2), /\r\nSubject: save\r\n\r\nsaved body\r\n$/);
  assert.equal(meta(id2).recipient, "r@slow.test");

  // shrink_data: the body is read back for the policy and the reception path.
  const body = "Subject: shrink\r\n\r\n" + "line of text\r\n".repeat(50);
  const id3 = await send(ports[0], body.slice(0, -2));
  const d3 = data(id3);
  assert.ok(d3.endsWith(body), "byte-exact body after shrink_data");
  // The policy saw everything but the X-KumoRef header added after the event.
  const kumoRef = /^X-KumoRef: [^\r]*\r\n(?:\t[^\r]*\r\n)*/.exec(d3);
  assert.ok(kumoRef, "supplemental header prepended after the event");
  assert.equal(meta(id3).meta.x_len, d3.length - kumoRef[0].length);
  assert.equal(await kumo.stop(), 0);
  await Deno.remove(dir, { recursive: true });
});
