/**
 * Delivery behaviours fixed after the audit of issue 4, at the QueueManager
 * level (real policy engine, LocalDisk spools, loopback DNS server and SMTP
 * sinks on 127.0.0.x): Expiration wording and fields, requeue_message with
 * kumo.reject, spool-in expiry with a message's own `expires`, corrupt meta
 * at spool-in, estimated attempt counts after a restart, session ids and
 * texts of internal failures, SOCKS5 sources, HAProxy source addresses,
 * a custom_lua session whose policy no longer loads after an epoch bump.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import { startSmtpSink } from "./support/smtp_sink.ts";
import { type Harness, policyText, startHarness } from "./support/queue_harness.ts";
import { freePort, startHaProxy } from "./support/deliver_e2e.ts";
import { Message } from "../src/message/message.ts";
import { startMiniMx } from "./support/mini_mx.ts";
import { selfSignedPem } from "./support/self_signed.ts";

const ZONES = {
  "dest.test": { MX: [{ pref: 10, host: "mx1.dest.test" }] },
  "mx1.dest.test": { A: ["127.0.0.2"] },
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A spool id (UUID v1 layout, src/message/spool_id.ts) whose creation time is `ms`. */
function spoolIdAt(ms: number): string {
  const ticks = BigInt(ms + 12_219_292_800_000) * 10_000n;
  const hex = (n: bigint, w: number) => n.toString(16).padStart(w, "0");
  const timeLow = ticks & 0xffffffffn;
  const timeMid = (ticks >> 32n) & 0xffffn;
  const timeHi = ((ticks >> 48n) & 0x0fffn) | 0x1000n;
  const rest = crypto.getRandomValues(new Uint8Array(8));
  rest[0] = (rest[0] & 0x3f) | 0x80;
  return hex(timeLow, 8) + hex(timeMid, 4) + hex(timeHi, 4) +
    [...rest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Spool a message created `ageMs` ago (not queued: spool-in picks it up at restart). */
async function spoolAged(
  h: Harness,
  rcpt: string,
  ageMs: number,
  scheduling?: Record<string, string>,
): Promise<Message> {
  const msg = new Message({
    id: spoolIdAt(Date.now() - ageMs),
    sender: "s@src.test",
    recipients: [rcpt],
    data: new TextEncoder().encode(`Subject: aged ${rcpt}\r\n\r\nbody\r\n`),
    meta: { reception_protocol: "ESMTP" },
  });
  if (scheduling) msg.setScheduling(scheduling);
  await h.spools.data.store(msg.id, msg.data!, { sync: false });
  await h.spools.meta.store(msg.id, msg.metaBytes(), { sync: false });
  return msg;
}

async function waitUntil(fn: () => Promise<boolean>, what: string, timeoutMs = 5000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const POOL = `
kumo.on('get_egress_pool', function(name)
  return kumo.make_egress_pool { name = name, entries = { { name = 'unspecified' } } }
end)`;

Deno.test("max_age Expiration uses upstream wording and carries the queue's pool and provider", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({
    addresses: ["127.0.0.2"],
    replies: (stage) => stage === "rcpt" ? { code: 451, text: "4.3.0 try later" } : undefined,
  });
  await using h = await startHarness(policyText({
    dns: dns.address,
    port: sink.port,
    queue: "max_age = '2s', egress_pool = 'pool-x', provider_name = 'prov-x'",
    extra: POOL,
  }));
  const msg = await h.inject("s@src.test", "r@dest.test");
  const [e] = await h.logs.waitFor("Expiration", 1, 10_000);
  // retry_interval 1s (no jitter below 20s): failures at ≈0 s and ≈1 s; the next
  // try would be 1 s + 2 s after creation, beyond max_age.
  assert.equal(h.logs.of("TransientFailure").length, 2);
  assert.equal(e.id, msg.id);
  assert.equal(e.response.code, 551);
  assert.deepEqual(e.response.enhanced_code, { class: 5, subject: 4, detail: 7 });
  assert.match(
    e.response.content,
    /^Next delivery time would be 3s( \d+ms)? after creation, which exceeds max_age=2s$/,
  );
  assert.equal(e.egress_pool, "pool-x");
  assert.equal(e.provider_name, "prov-x");
  assert.equal(e.num_attempts, 2);
  await waitUntil(async () => (await h.spooled()) === 0, "spool to empty");
});

Deno.test("per-message expires: Expiration names set_scheduling, not max_age", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({
    addresses: ["127.0.0.2"],
    replies: (stage) => stage === "rcpt" ? { code: 451, text: "4.3.0 try later" } : undefined,
  });
  await using h = await startHarness(policyText({ dns: dns.address, port: sink.port }));
  const msg = await h.spoolOnly("s@src.test", "r@dest.test");
  msg.setScheduling({ expires: new Date(Date.now() + 1500).toISOString() });
  await h.qm.insert(msg);
  const [e] = await h.logs.waitFor("Expiration", 1, 10_000);
  assert.equal(e.response.code, 551);
  assert.match(
    e.response.content,
    /^Next delivery time would be at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{3})? UTC which exceeds the expiry time \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{3})? UTC configured via set_scheduling$/,
  );
});

Deno.test("requeue_message: kumo.reject bounces with its code and text", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({
    addresses: ["127.0.0.2"],
    replies: (stage) => stage === "rcpt" ? { code: 451, text: "4.3.0 try later" } : undefined,
  });
  const extra = `
kumo.on('requeue_message', function(msg, response, context, inc, delay)
  kumo.reject(552, '5.7.1 no retries for you')
end)`;
  await using h = await startHarness(policyText({ dns: dns.address, port: sink.port, extra }));
  const msg = await h.inject("s@src.test", "r@dest.test");
  const [b] = await h.logs.waitFor("Bounce", 1);
  assert.equal(b.id, msg.id);
  assert.equal(b.response.code, 552);
  assert.deepEqual(b.response.enhanced_code, { class: 5, subject: 7, detail: 1 });
  assert.equal(b.response.content, "no retries for you");
  await waitUntil(async () => (await h.spooled()) === 0, "spool to empty");
});

Deno.test("requeue_message: another error keeps the message in its original queue", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  let rcpts = 0;
  await using sink = await startSmtpSink({
    addresses: ["127.0.0.2"],
    replies: (stage) =>
      stage === "rcpt" && rcpts++ === 0 ? { code: 451, text: "4.3.0 try later" } : undefined,
  });
  const extra = `
kumo.on('requeue_message', function(msg)
  msg:set_meta('queue', 'elsewhere.test')
  error('handler bug')
end)`;
  await using h = await startHarness(policyText({ dns: dns.address, port: sink.port, extra }));
  await h.inject("s@src.test", "r@dest.test");
  const [d] = await h.logs.waitFor("Delivery", 1, 10_000);
  assert.equal(h.logs.of("Bounce").length, 0);
  assert.equal(d.queue, "dest.test");
  assert.equal(d.num_attempts, 1);
});

Deno.test("spool-in: estimated num_attempts after a restart, own expires beats max_age", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  await using h = await startHarness(policyText({
    dns: dns.address,
    port: sink.port,
    queue: "retry_interval = '1m', max_age = '1h'",
  }));
  const MIN = 60_000;
  // 10 min old with a 1 min base: attempts after 1, 2, 4 min fit (7 min), 8 more do not.
  const young = await spoolAged(h, "young@dest.test", 10 * MIN);
  // Older than max_age but with its own expiry an hour away: still delivered.
  const own = await spoolAged(h, "own@dest.test", 2 * 60 * MIN, {
    expires: new Date(Date.now() + 60 * MIN).toISOString(),
  });
  // Older than max_age without one: expired at spool-in.
  const old = await spoolAged(h, "old@dest.test", 2 * 60 * MIN);
  await h.restart();
  const recs = await h.logs.waitFor("Delivery", 2, 10_000);
  const byId = new Map(recs.map((r) => [r.id, r]));
  assert.equal(byId.get(young.id)?.num_attempts, 3);
  assert.ok(byId.has(own.id), "the message with its own expires was delivered");
  const [e] = await h.logs.waitFor("Expiration", 1);
  assert.equal(e.id, old.id);
  assert.equal(e.site, "localhost");
  assert.match(e.response.content, /^Next delivery time would be .* which exceeds max_age=1h$/);
  await waitUntil(async () => (await h.spooled()) === 0, "spool to empty");
});

Deno.test("spool-in: unparsable meta is logged as Expiration 551 5.1.3 and removed", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using h = await startHarness(policyText({ dns: dns.address, port: 1 }));
  const id = spoolIdAt(Date.now() - 5000);
  await h.spools.meta.store(id, new TextEncoder().encode("{not json"), { sync: false });
  await h.spools.data.store(id, new TextEncoder().encode("Subject: x\r\n\r\nx\r\n"), {
    sync: false,
  });
  await h.restart();
  const [e] = await h.logs.waitFor("Expiration", 1);
  assert.equal(e.id, id);
  assert.equal(e.response.code, 551);
  assert.deepEqual(e.response.enhanced_code, { class: 5, subject: 1, detail: 3 });
  assert.match(e.response.content, /^Failed to parse metadata: /);
  // created comes from the id (5 s ago), not from "now".
  assert.ok(Math.abs(e.created - Math.floor((Date.now() - 5000) / 1000)) <= 2, String(e.created));
  await waitUntil(async () => (await h.spooled()) === 0, "meta spool to empty");
  assert.equal(await h.spools.data.load(id), null, "data removed too");
});

Deno.test("exhausted connection plan: TransientFailure 400 with an outbound session_id", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  const port = await freePort(); // nothing listens there on 127.0.0.2
  await using h = await startHarness(policyText({ dns: dns.address, port }));
  await h.inject("s@src.test", "r@dest.test");
  const [tf] = await h.logs.waitFor("TransientFailure", 1);
  assert.equal(tf.response.code, 400);
  assert.match(
    tf.response.content,
    /^KumoMTA internal: failed to connect to any candidate hosts: /,
  );
  assert.match(tf.session_id ?? "", UUID);
  assert.equal(tf.peer_address, null);
  assert.equal(tf.site, "unspecified->mx1.dest.test@smtp_client");
});

Deno.test("prohibited host Bounce names <host>/<addr>", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using h = await startHarness(
    policyText({ dns: dns.address, port: 1, path: "prohibited_hosts = { '127.0.0.0/8' }" }),
  );
  await h.inject("s@src.test", "r@dest.test");
  const [b] = await h.logs.waitFor("Bounce", 1);
  assert.equal(b.response.code, 550);
  assert.match(
    b.response.content,
    /^mx1\.dest\.test\.\/127\.0\.0\.2 is on the list of prohibited_hosts/,
  );
});

Deno.test("a SOCKS5 source fails transiently instead of connecting directly", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  const extra = `
kumo.on('get_egress_pool', function(name)
  return kumo.make_egress_pool { name = name, entries = { { name = 'via-socks' } } }
end)
kumo.on('get_egress_source', function(name)
  return kumo.make_egress_source { name = name,
    socks5_proxy_server = '127.0.0.1:1080', socks5_proxy_source_address = '127.0.0.9' }
end)`;
  await using h = await startHarness(
    policyText({ dns: dns.address, port: sink.port, queue: "egress_pool = 'socks'", extra }),
  );
  await h.inject("s@src.test", "r@dest.test");
  const [tf] = await h.logs.waitFor("TransientFailure", 1);
  assert.equal(tf.response.code, 400);
  assert.match(
    tf.response.content,
    /^KumoMTA internal: failed to connect to any candidate hosts: .*SOCKS5 proxies are not supported$/,
  );
  assert.equal(tf.egress_source, "via-socks");
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(sink.connections.length, 0, "no direct connection was made");
});

Deno.test("HAProxy source_address is ha_proxy_source_address:0 with the proxy as server", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-fixes-hp-" });
  const hp = await startHaProxy(dir);
  if ("skipped" in hp) {
    console.log(`HAProxy check skipped: ${hp.skipped}`);
    return;
  }
  await using _hp = hp;
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  const extra = `
kumo.on('get_egress_pool', function(name)
  return kumo.make_egress_pool { name = name, entries = { { name = 'hp' } } }
end)
kumo.on('get_egress_source', function(name)
  return kumo.make_egress_source { name = name,
    ha_proxy_server = '${hp.server}', ha_proxy_source_address = '127.0.0.41' }
end)`;
  await using h = await startHarness(
    policyText({ dns: dns.address, port: sink.port, queue: "egress_pool = 'p'", extra }),
  );
  await h.inject("s@src.test", "r@dest.test");
  const [d] = await h.logs.waitFor("Delivery", 1, 10_000);
  assert.equal(sink.messages[0].remoteAddress, "127.0.0.41");
  assert.deepEqual(d.source_address, {
    address: "127.0.0.41:0",
    server: hp.server,
    protocol: "haproxy",
  });
  await Deno.remove(dir, { recursive: true }).catch(() => {});
});

const TWO_SITES = {
  "a.test": { MX: [{ pref: 10, host: "mx.a.test" }] },
  "mx.a.test": { A: ["127.0.0.2"] },
  "b.test": { MX: [{ pref: 10, host: "mx.b.test" }] },
  "mx.b.test": { A: ["127.0.0.3"] },
};

Deno.test("additional_connection_limits are shared by name across ready queues", async () => {
  await using dns = await startDnsServer({ zones: TWO_SITES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2", "127.0.0.3"], delayMs: 100 });
  await using h = await startHarness(policyText({
    dns: dns.address,
    port: sink.port,
    path: "connection_limit = 4, idle_timeout = '100ms', " +
      "additional_connection_limits = { ['fixes-shared-conn'] = 1 }",
  }));
  for (let i = 0; i < 3; i++) {
    await h.inject("s@src.test", `r${i}@a.test`);
    await h.inject("s@src.test", `r${i}@b.test`);
  }
  await sink.waitFor(6, 20_000);
  assert.equal(h.qm.readyQueues().length, 2);
  assert.equal(sink.maxConcurrent, 1, "one connection at a time over both sites");
});

Deno.test("additional_message_rate_throttles are shared by name across ready queues", async () => {
  await using dns = await startDnsServer({ zones: TWO_SITES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2", "127.0.0.3"] });
  await using h = await startHarness(policyText({
    dns: dns.address,
    port: sink.port,
    path: "additional_message_rate_throttles = { ['fixes-shared-rate'] = '2/h' }",
  }));
  for (let i = 0; i < 2; i++) {
    await h.inject("s@src.test", `r${i}@a.test`);
    await h.inject("s@src.test", `r${i}@b.test`);
  }
  const delayed = await h.logs.waitFor("Delayed", 2, 10_000);
  for (const d of delayed) {
    assert.match(
      d.response.content,
      /^Context: ready queue .* additional_message_rate_throttles fixes-shared-rate throttled\. Next due in /,
    );
  }
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(sink.messages.length, 2, "two sends per hour over both sites together");
  assert.equal(h.logs.of("Delivery").length, 2);
});

Deno.test("source_selection_rate moves selection to other sources, then no source is eligible", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  const extra = `
kumo.on('get_egress_pool', function(name)
  if name == 'single' then
    return kumo.make_egress_pool { name = name, entries = { { name = 'ip-a' } } }
  end
  return kumo.make_egress_pool { name = name, entries = { { name = 'ip-a' }, { name = 'ip-b' } } }
end)
kumo.on('get_egress_source', function(name)
  local ips = { ['ip-a'] = '127.0.0.11', ['ip-b'] = '127.0.0.12' }
  return kumo.make_egress_source { name = name, source_address = ips[name] }
end)`;
  const queue = "egress_pool = (domain == 'dest.test') and 'both' or 'single'";
  const path = "source_selection_rate = (source == 'ip-a') and '1/h' or nil";
  await using h = await startHarness(
    policyText({ dns: dns.address, port: sink.port, queue, path, extra }),
  );
  for (let i = 0; i < 4; i++) await h.inject("s@src.test", `r${i}@dest.test`);
  await sink.waitFor(4, 10_000);
  const from = sink.messages.map((m) => m.remoteAddress);
  assert.equal(from.filter((a) => a === "127.0.0.11").length, 1, JSON.stringify(from));
  assert.equal(from.filter((a) => a === "127.0.0.12").length, 3, JSON.stringify(from));
  assert.equal(h.logs.of("TransientFailure").length, 0);
});

Deno.test("source_selection_rate with every source refused: TransientFailure no sources eligible", async () => {
  await using dns = await startDnsServer({ zones: ZONES });
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  await using h = await startHarness(policyText({
    dns: dns.address,
    port: sink.port,
    path: "source_selection_rate = '1/h'",
  }));
  await h.inject("s@src.test", "first@dest.test");
  await h.logs.waitFor("Delivery", 1);
  await h.inject("s@src.test", "second@dest.test");
  const [tf] = await h.logs.waitFor("TransientFailure", 1);
  assert.equal(tf.response.code, 451);
  assert.equal(
    tf.response.content,
    "KumoMTA internal: no sources for dest.test pool=`unspecified` are eligible for selection at this time",
  );
  assert.equal(tf.recipient, "second@dest.test");
});

const LMTP_ZONES = {
  "lmtp.test": { MX: [{ pref: 10, host: "mx.lmtp.test" }] },
  "mx.lmtp.test": { A: ["127.0.0.7"] },
};

Deno.test("use_lmtp: LHLO and one outcome per recipient from the replies after the dot", async () => {
  await using dns = await startDnsServer({ zones: LMTP_ZONES });
  await using mx = await startMiniMx({
    address: "127.0.0.7",
    lmtp: true,
    rcptDotReply: (r) =>
      r.startsWith("full@") ? "452 4.2.2 mailbox full" : `250 2.1.5 <${r}> delivered`,
  });
  await using h = await startHarness(
    policyText({ dns: dns.address, port: mx.port, path: "use_lmtp = true" }),
  );
  await h.inject("s@src.test", ["ok@lmtp.test", "full@lmtp.test"]);
  const [d] = await h.logs.waitFor("Delivery", 1);
  const [tf] = await h.logs.waitFor("TransientFailure", 1);
  assert.equal(mx.messages[0].greetingVerb, "LHLO");
  assert.equal(mx.messages[0].greeting, "host.test");
  assert.equal(d.recipient, "ok@lmtp.test");
  assert.equal(d.response.content, "<ok@lmtp.test> delivered");
  assert.equal(tf.recipient, "full@lmtp.test");
  assert.equal(tf.response.code, 452);
  assert.equal(tf.response.content, "mailbox full");
});

Deno.test("tls_certificate / tls_private_key: the client certificate is presented in STARTTLS", async () => {
  const server = await selfSignedPem({ cn: "mx.lmtp.test" });
  const client = await selfSignedPem({ cn: "kumo-client.test" });
  if (!server || !client) {
    console.log("skipped: openssl is not installed");
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "kumo-fixes-cert-" });
  await Deno.writeTextFile(`${dir}/client.pem`, client.cert);
  await Deno.writeTextFile(`${dir}/client.key`, client.key);
  await using dns = await startDnsServer({ zones: LMTP_ZONES });
  await using mx = await startMiniMx({ address: "127.0.0.7", tls: server });
  await using h = await startHarness(policyText({
    dns: dns.address,
    port: mx.port,
    path: `enable_tls = 'RequiredInsecure', tls_certificate = '${dir}/client.pem', ` +
      `tls_private_key = { key_data = [[${client.key}]] }`,
  }));
  await h.inject("s@src.test", "r@lmtp.test");
  const [d] = await h.logs.waitFor("Delivery", 1);
  assert.ok(d.tls_protocol_version, "delivered over TLS");
  assert.deepEqual(mx.messages[0].clientCert, { CN: "kumo-client.test" });
  await Deno.remove(dir, { recursive: true }).catch(() => {});
});

Deno.test("system_shutdown_timeout aborts an in-flight delivery at shutdown; the message stays spooled", async () => {
  await using dns = await startDnsServer({ zones: LMTP_ZONES });
  await using mx = await startMiniMx({ address: "127.0.0.7", holdDot: true });
  await using h = await startHarness(policyText({
    dns: dns.address,
    port: mx.port,
    path: "system_shutdown_timeout = '300ms', data_dot_timeout = '60s'",
  }));
  const msg = await h.inject("s@src.test", "r@lmtp.test");
  await mx.waitForBodies(1);
  const t0 = Date.now();
  await h.stopQueues();
  const took = Date.now() - t0;
  assert.ok(took < 15_000, `shutdown took ${took} ms (data_dot_timeout is 60 s)`);
  const [tf] = await h.logs.waitFor("TransientFailure", 1);
  assert.equal(tf.id, msg.id);
  assert.equal(tf.response.code, 400);
  assert.match(tf.response.content, /^KumoMTA internal: failed to send message: /);
  assert.equal(await h.spooled(), 1, "still in the spool for the next start");
});

Deno.test("custom_lua: a policy broken after an epoch bump fails delivery transiently with file:line, then recovers", async () => {
  await using dns = await startDnsServer({ zones: {} });
  const good = `local kumo = require 'kumo'
kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
kumo.on('init', function() end)
kumo.on('get_queue_config', function(domain)
  return kumo.make_queue_config { retry_interval = '1s',
    protocol = { custom_lua = { constructor = 'make.conn' } } }
end)
kumo.on('get_egress_path_config', function()
  return kumo.make_egress_path { max_deliveries_per_connection = 1 }
end)
kumo.on('make.conn', function(domain)
  local conn = {}
  function conn:send(msg) return 'sent to ' .. domain end
  return conn
end)
`;
  await using h = await startHarness(good);
  const first = await h.inject("s@src.test", "a@hook.test");
  const [d1] = await h.logs.waitFor("Delivery", 1);
  assert.equal(d1.id, first.id);
  // The policy file becomes invalid (line 16) and the config epoch is bumped:
  // the next delivery session needs a new Lua context, which cannot be made.
  const path = `${h.dir}/policy.lua`;
  await Deno.writeTextFile(path, good + "local x = = 1\n");
  h.engine.bumpEpoch();
  const second = await h.inject("s@src.test", "b@hook.test");
  const [tf] = await h.logs.waitFor("TransientFailure", 1);
  assert.equal(tf.id, second.id);
  assert.equal(tf.response.code, 400);
  assert.equal(tf.delivery_protocol, "Lua");
  assert.match(
    tf.response.content,
    /^KumoMTA internal: failed to connect to any candidate hosts: Cannot open custom_lua session via "make\.conn": Error evaluating policy file ".*policy\.lua": .*policy\.lua:16: /,
  );
  assert.equal(h.engine.activeContexts, 0, "the failed session released its slot");
  // Fixed: the retry (1 s) makes a new context from the file and delivers.
  await Deno.writeTextFile(path, good);
  const recs = await h.logs.waitFor("Delivery", 2, 15_000);
  assert.equal(recs[1].id, second.id);
  assert.equal(recs[1].response.content, "sent to hook.test");
  await waitUntil(async () => (await h.spooled()) === 0, "spool to empty");
});
