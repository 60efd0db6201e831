/**
 * The "Done when" delivery scenarios of issue 4 through the real program:
 * swaks → kumo-edge (mod.ts, one shared instance) → the test's own DNS
 * server → SMTP sinks on 127.0.0.x (and HAProxy for the proxied source).
 * Outcomes are asserted at the sink and in the log files. One swaks run per
 * scenario; the bulk ones (WRR, connection_limit, max_message_rate) give
 * swaks every recipient in one transaction, which kumo splits into one
 * message per recipient (BifurcateAlways).
 *
 * Each scenario uses its own destination domain, so they run concurrently
 * in one program: the mail is injected up front, each step then waits for
 * its own evidence.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "./support/dns_server.ts";
import { type SinkMessage, startSmtpSink } from "./support/smtp_sink.ts";
import { startKumo } from "./support/kumo_process.ts";
import {
  injectWithSwaks,
  readLogsNow,
  startHaProxy,
  type SwaksInjection,
  waitForLogs,
} from "./support/deliver_e2e.ts";

const mxOf = (d: string, ip: string) => ({
  [d]: { MX: [{ pref: 10, host: `mx.${d}` }] },
  [`mx.${d}`]: { A: [ip] },
});

type Rec = Record<string, unknown>;
const rcptOf = (r: Rec) => (Array.isArray(r.recipient) ? r.recipient : [r.recipient]) as string[];
const forDomain = (recs: Rec[], type: string, d: string) =>
  recs.filter((r) => r.type === type && rcptOf(r).some((x) => x.endsWith(`@${d}`)));
const subjectOf = (m: SinkMessage) =>
  /^Subject: (.*)$/m.exec(new TextDecoder().decode(m.data))?.[1] ?? "";

Deno.test("delivery scenarios through the real program", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "kumo-deliver-scn-" });
  await using dns = await startDnsServer({
    zones: {
      "mx.test": {
        MX: [{ pref: 20, host: "mx2.mx.test" }, { pref: 10, host: "mx1.mx.test" }],
      },
      "mx1.mx.test": { A: ["127.0.0.2"] },
      "mx2.mx.test": { A: ["127.0.0.3"] },
      "fall.test": {
        MX: [{ pref: 10, host: "dead.fall.test" }, { pref: 20, host: "ok.fall.test" }],
      },
      "dead.fall.test": { A: ["127.0.0.9"] }, // nothing listens there
      "ok.fall.test": { A: ["127.0.0.3"] },
      ...mxOf("wrr.test", "127.0.0.4"),
      ...mxOf("retry.test", "127.0.0.4"),
      ...mxOf("bounce.test", "127.0.0.4"),
      ...mxOf("expire.test", "127.0.0.4"),
      ...mxOf("rate.test", "127.0.0.4"),
      ...mxOf("tls.test", "127.0.0.4"),
      ...mxOf("haproxy.test", "127.0.0.6"),
      ...mxOf("limit.test", "127.0.0.5"),
    },
  });
  const retried = new Map<string, number>();
  await using sink = await startSmtpSink({
    addresses: ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.6"],
    replies(stage, arg) {
      if (stage !== "rcpt") return undefined;
      if (arg.includes("@bounce.test")) return { code: 550, text: "5.1.1 no such user here" };
      if (arg.includes("@expire.test")) return { code: 451, text: "4.3.0 come back later" };
      if (arg.includes("@retry.test")) {
        const n = (retried.get(arg) ?? 0) + 1;
        retried.set(arg, n);
        if (n === 1) return { code: 451, text: "4.7.1 greylisted, try again" };
      }
      return undefined;
    },
  });
  // Slow replies make concurrent connections visible for connection_limit.
  await using slow = await startSmtpSink({ addresses: ["127.0.0.5"], delayMs: 100 });
  const hp = await startHaProxy(dir);
  const hpServer = "server" in hp ? hp.server : "127.0.0.1:9"; // unused when skipped
  const policy = `
local kumo = require 'kumo'
kumo.on('init', function()
  kumo.dns.configure_resolver { name_servers = { '${dns.address}' } }
  kumo.start_esmtp_listener { listen = '127.0.0.1:0', hostname = 'kumo.test' }
  kumo.define_spool { name = 'data', path = '${dir}/spool/data' }
  kumo.define_spool { name = 'meta', path = '${dir}/spool/meta' }
  kumo.configure_local_logs { log_dir = '${dir}/logs', max_segment_duration = '300ms' }
end)
local QUEUES = {
  ['retry.test'] = { retry_interval = '2s' },
  ['expire.test'] = { retry_interval = '1s', max_age = '2s' },
  ['wrr.test'] = { egress_pool = 'wrr' },
  ['haproxy.test'] = { egress_pool = 'hp' },
}
kumo.on('get_queue_config', function(domain, tenant, campaign, routing_domain)
  local q = QUEUES[domain] or {}
  return kumo.make_queue_config {
    retry_interval = q.retry_interval or '1s',
    max_age = q.max_age or '1h',
    egress_pool = q.egress_pool or 'main',
  }
end)
kumo.on('get_egress_pool', function(name)
  if name == 'wrr' then
    return kumo.make_egress_pool { name = name, entries = {
      { name = 's1', weight = 2 }, { name = 's2', weight = 1 }, { name = 's0', weight = 0 } } }
  end
  return kumo.make_egress_pool { name = name, entries = { { name = name } } }
end)
local SOURCES = {
  main = { source_address = '127.0.0.20', ehlo_domain = 'main.out.test' },
  s0 = { source_address = '127.0.0.29', ehlo_domain = 's0.out.test' },
  s1 = { source_address = '127.0.0.21', ehlo_domain = 's1.out.test' },
  s2 = { source_address = '127.0.0.22', ehlo_domain = 's2.out.test' },
  hp = { ha_proxy_server = '${hpServer}', ha_proxy_source_address = '127.0.0.31',
         ehlo_domain = 'hp.out.test' },
}
kumo.on('get_egress_source', function(name)
  local s = SOURCES[name]
  s.name = name
  return kumo.make_egress_source(s)
end)
kumo.on('get_egress_path_config', function(domain, source, site)
  local p = { smtp_port = ${sink.port}, prohibited_hosts = {}, enable_tls = 'Disabled',
              connect_timeout = '2s' }
  if domain == 'limit.test' then
    p.smtp_port = ${slow.port}
    p.connection_limit = 2
    p.max_deliveries_per_connection = 3
  elseif domain == 'rate.test' then
    p.max_message_rate = '5/s'
  elseif domain == 'tls.test' then
    p.enable_tls = 'Required'
  end
  return kumo.make_egress_path(p)
end)
`;
  await using kumo = await startKumo(dir, policy);
  const logDir = `${dir}/logs`;

  // Inject everything up front with swaks; the scenarios then run side by side.
  const range = (n: number, d: string) => Array.from({ length: n }, (_, i) => `r${i}@${d}`);
  const mails: SwaksInjection[] = [
    { to: ["low@mx.test"], subject: "low" },
    { to: ["fall@fall.test"], subject: "fall" },
    { to: ["greylisted@retry.test"], subject: "retry" },
    { to: ["gone@bounce.test"], subject: "bounce" },
    { to: ["late@expire.test"], subject: "expire" },
    { to: ["secure@tls.test"], subject: "tls" },
    { to: ["proxied@haproxy.test"], subject: "haproxy" },
    { to: range(20, "limit.test"), subject: "limit" },
    { to: range(10, "rate.test"), subject: "rate" },
  ];
  const injectedAt = Date.now();
  for (const m of mails) await injectWithSwaks(kumo.port, m);
  const wrrDone = injectWithSwaks(kumo.port, { to: range(300, "wrr.test"), subject: "wrr" });

  const bySubject = (s: string) => sink.messages.find((m) => subjectOf(m) === s);
  const waitSink = async (pred: () => boolean, what: string, ms = 20_000) => {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${kumo.stderr()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  await t.step("delivers to the lowest MX", async () => {
    await waitSink(() => bySubject("low") !== undefined, "low");
    const m = bySubject("low")!;
    assert.equal(m.localAddress, "127.0.0.2");
    assert.equal(m.remoteAddress, "127.0.0.20");
    assert.equal(m.ehlo, "main.out.test");
    assert.deepEqual(m.rcptTo, ["low@mx.test"]);
    const text = new TextDecoder().decode(m.data);
    assert.match(
      text,
      /\r\n\.leading dot\r\n/,
      "dot-stuffed on the way out, unstuffed by the sink",
    );
    assert.match(text, /^X-KumoRef: /m);
    assert.match(text, /^Received: from client\.test \(127\.0\.0\.1\)/m);
    const recs = await waitForLogs(
      logDir,
      (r) => forDomain(r, "Delivery", "mx.test").length > 0,
      "low Delivery",
    );
    const d = forDomain(recs, "Delivery", "mx.test")[0];
    assert.deepEqual(d.peer_address, { name: "mx1.mx.test.", addr: "127.0.0.2" });
    assert.equal(d.site, "main->(mx1|mx2).mx.test@smtp_client");
    assert.equal(forDomain(recs, "Reception", "mx.test")[0].reception_protocol, "ESMTP");
  });

  await t.step("falls over to the next MX when the lowest refuses connections", async () => {
    await waitSink(() => bySubject("fall") !== undefined, "fall");
    assert.equal(bySubject("fall")!.localAddress, "127.0.0.3");
    const recs = await waitForLogs(
      logDir,
      (r) => forDomain(r, "Delivery", "fall.test").length > 0,
      "fall Delivery",
    );
    const d = forDomain(recs, "Delivery", "fall.test")[0];
    assert.deepEqual(d.peer_address, { name: "ok.fall.test.", addr: "127.0.0.3" });
    assert.equal(forDomain(recs, "TransientFailure", "fall.test").length, 0);
  });

  await t.step("source IP and EHLO per source; WRR 2:1 over 300 messages", async () => {
    await wrrDone;
    await waitSink(
      () => sink.messages.filter((m) => subjectOf(m) === "wrr").length >= 300,
      "300 wrr messages",
      40_000,
    );
    const by: Record<string, number> = {};
    for (const m of sink.messages) {
      if (subjectOf(m) !== "wrr") continue;
      by[m.remoteAddress] = (by[m.remoteAddress] ?? 0) + 1;
      const want = { "127.0.0.21": "s1.out.test", "127.0.0.22": "s2.out.test" }[m.remoteAddress];
      assert.equal(m.ehlo, want, `EHLO from ${m.remoteAddress}`);
    }
    assert.equal(by["127.0.0.29"], undefined, "weight 0 is never used");
    // WRR is deterministic per scheduled queue: exactly 2:1 (well within ±5%).
    assert.deepEqual(by, { "127.0.0.21": 200, "127.0.0.22": 100 });
  });

  await t.step("4xx, then success after the spec's retry interval", async () => {
    const recs = await waitForLogs(
      logDir,
      (r) => forDomain(r, "Delivery", "retry.test").length > 0,
      "retry Delivery",
    );
    const tf = forDomain(recs, "TransientFailure", "retry.test");
    const d = forDomain(recs, "Delivery", "retry.test")[0];
    assert.equal(tf.length, 1);
    assert.equal((tf[0].response as { code: number }).code, 451);
    assert.equal(tf[0].num_attempts, 0);
    assert.equal(d.num_attempts, 1);
    // retry_interval 2s; jitter J = min(2s/20, 60s) rounds to 0 whole seconds.
    const gap = Date.parse(d.event_time as string) - Date.parse(tf[0].event_time as string);
    assert.ok(gap >= 1900 && gap < 6000, `retry gap ${gap} ms`);
  });

  await t.step("5xx is a Bounce", async () => {
    const recs = await waitForLogs(
      logDir,
      (r) => forDomain(r, "Bounce", "bounce.test").length > 0,
      "Bounce",
    );
    const b = forDomain(recs, "Bounce", "bounce.test")[0];
    assert.deepEqual(b.response, {
      code: 550,
      enhanced_code: { class: 5, subject: 1, detail: 1 },
      content: "no such user here",
      command: "RCPT TO:<gone@bounce.test>\r\n",
    });
    assert.equal(b.site, "main->mx.bounce.test@smtp_client");
  });

  await t.step("max_age leads to Expiration", async () => {
    const recs = await waitForLogs(
      logDir,
      (r) => forDomain(r, "Expiration", "expire.test").length > 0,
      "Expiration",
    );
    const e = forDomain(recs, "Expiration", "expire.test")[0];
    assert.equal((e.response as { code: number }).code, 551);
    assert.deepEqual((e.response as Rec).enhanced_code, { class: 5, subject: 4, detail: 7 });
    assert.match((e.response as { content: string }).content, /^Next delivery time would be/);
    assert.equal(forDomain(recs, "TransientFailure", "expire.test").length, 2);
  });

  await t.step("connection_limit bounds concurrent connections at the sink", async () => {
    await slow.waitFor(20, 30_000);
    // Concurrency from the sink's connection intervals. A connection the client
    // closed in the same few ms the next one opened counts as closed (the sink
    // notices a close a tick after the client, which waits for the FIN).
    const conns = slow.connections;
    let most = 0;
    for (const c of conns) {
      const open = conns.filter((o) =>
        o.connectedAt <= c.connectedAt &&
        (o.closedAt === undefined || o.closedAt > c.connectedAt + 5)
      ).length;
      most = Math.max(most, open);
    }
    const dump = JSON.stringify(conns.map((c) => [c.connectedAt, c.closedAt, c.messages]));
    assert.ok(most <= 2, `max concurrent ${most}: ${dump}`);
    assert.equal(most, 2, `the limit is used: ${dump}`);
    // max_deliveries_per_connection = 3 → at least 7 connections for 20 messages.
    assert.ok(slow.connections.length >= 7, `connections ${slow.connections.length}`);
  });

  await t.step("max_message_rate is honoured at the sink", async () => {
    await waitSink(
      () => sink.messages.filter((m) => subjectOf(m) === "rate").length >= 10,
      "rate messages",
    );
    const times = sink.messages.filter((m) => subjectOf(m) === "rate")
      .map((m) => m.receivedAt).sort((a, b) => a - b);
    // 5/s with a burst of 5: the last 5 of 10 are spaced 200 ms apart at least.
    const span = times[9] - times[0];
    assert.ok(span >= 800, `10 messages at 5/s took only ${span} ms`);
    assert.ok(times[9] - injectedAt < 15_000);
  });

  await t.step("STARTTLS Required against a sink without TLS is a TransientFailure", async () => {
    const recs = await waitForLogs(
      logDir,
      (r) => forDomain(r, "TransientFailure", "tls.test").length > 0,
      "tls TransientFailure",
    );
    const f = forDomain(recs, "TransientFailure", "tls.test")[0];
    assert.equal((f.response as { code: number }).code, 400);
    assert.match(
      (f.response as { content: string }).content,
      /^KumoMTA internal: failed to connect to any candidate hosts: .*STARTTLS/,
    );
    assert.equal(f.site, "main->mx.tls.test@smtp_client");
    assert.equal(bySubject("tls"), undefined);
  });

  await t.step({
    name: "HAProxy path delivers from the requested source",
    ignore: !("server" in hp),
    fn: async () => {
      await waitSink(() => bySubject("haproxy") !== undefined, "haproxy");
      const m = bySubject("haproxy")!;
      assert.equal(m.remoteAddress, "127.0.0.31");
      assert.equal(m.localAddress, "127.0.0.6");
      assert.equal(m.ehlo, "hp.out.test");
      const recs = await waitForLogs(
        logDir,
        (r) => forDomain(r, "Delivery", "haproxy.test").length > 0,
        "haproxy Delivery",
      );
      const sa = forDomain(recs, "Delivery", "haproxy.test")[0].source_address as Rec;
      assert.equal(sa.protocol, "haproxy");
      assert.equal(sa.server, hpServer);
    },
  });
  if ("skipped" in hp) console.log(`HAProxy scenario skipped: ${hp.skipped}`);

  assert.equal(readLogsNow(logDir).filter((r) => r.type === "Delivery").length >= 1, true);
  if ("server" in hp) await hp[Symbol.asyncDispose]();
  await kumo.stop();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
});
