import assert from "node:assert/strict";
import { startMiniMx } from "../../../tests/support/mini_mx.ts";
import { selfSignedPem } from "../../../tests/support/self_signed.ts";
import { defaultTimeouts, SmtpClient, type SmtpClientPlan } from "./smtp_client.ts";

const enc = new TextEncoder();

function plan(port: number, extra: Partial<SmtpClientPlan> = {}): SmtpClientPlan {
  return {
    name: "mx.test.",
    addr: "127.0.0.1",
    port,
    ehloDomain: "client.test",
    enableTls: "Disabled",
    enablePipelining: true,
    enableRset: true,
    ignore8bit: false,
    timeouts: { ...defaultTimeouts(), connect: 2000, banner: 2000 },
    ...extra,
  };
}

Deno.test("SmtpClient with lmtp sends LHLO and maps one reply per recipient after the dot", async () => {
  await using mx = await startMiniMx({
    lmtp: true,
    rcptDotReply: (r) =>
      r.startsWith("full@") ? "452 4.2.2 mailbox full" : `250 2.0.0 <${r}> delivered`,
  });
  const c = await SmtpClient.connect(plan(mx.port, { lmtp: true }));
  const rs = await c.send({
    sender: "a@x.test",
    recipients: ["one@y.test", "full@y.test", "two@y.test"],
    data: enc.encode("Subject: t\r\n\r\nbody\r\n"),
  });
  assert.deepEqual(rs.map((r) => [r.code, r.text, r.command]), [
    [250, "<one@y.test> delivered", ".\r\n"],
    [452, "mailbox full", ".\r\n"],
    [250, "<two@y.test> delivered", ".\r\n"],
  ]);
  // The connection is still in step: a second transaction works.
  const again = await c.send({
    sender: "",
    recipients: ["three@y.test"],
    data: enc.encode("x\r\n"),
  });
  assert.equal(again[0].code, 250);
  await c.quit();
  assert.equal(mx.messages.length, 2);
  assert.equal(mx.messages[0].greetingVerb, "LHLO");
  assert.equal(mx.messages[0].greeting, "client.test");
});

Deno.test("SmtpClient without lmtp is refused by an LMTP server (no EHLO fallback)", async () => {
  await using mx = await startMiniMx({ lmtp: true });
  await assert.rejects(SmtpClient.connect(plan(mx.port)), /EHLO rejected by 127\.0\.0\.1: 500/);
});

Deno.test("SmtpClient presents the client certificate in STARTTLS", async () => {
  const server = await selfSignedPem({ cn: "mini.test" });
  const client = await selfSignedPem({ cn: "client-cert.test" });
  if (!server || !client) {
    console.log("skipped: openssl is not installed");
    return;
  }
  await using mx = await startMiniMx({ tls: server });
  const c = await SmtpClient.connect(
    plan(mx.port, { enableTls: "RequiredInsecure", clientCertificate: client }),
  );
  await c.send({ sender: "a@x.test", recipients: ["b@y.test"], data: enc.encode("x\r\n") });
  await c.quit();
  assert.equal(mx.messages[0].tls, true);
  assert.deepEqual(mx.messages[0].clientCert, { CN: "client-cert.test" });

  const plain = await SmtpClient.connect(plan(mx.port, { enableTls: "RequiredInsecure" }));
  await plain.send({ sender: "a@x.test", recipients: ["b@y.test"], data: enc.encode("x\r\n") });
  await plain.quit();
  assert.equal(mx.messages[1].tls, true);
  assert.equal(mx.messages[1].clientCert, undefined);
});
