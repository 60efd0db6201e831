import assert from "node:assert/strict";
import { startSmtpSink } from "../../../tests/support/smtp_sink.ts";
import {
  classifyReply,
  ConnectError,
  defaultTimeouts,
  SmtpClient,
  type SmtpClientPlan,
} from "./smtp_client.ts";
import { encodeProxyV2 } from "./ha_proxy.ts";

const enc = new TextEncoder();

function plan(port: number, extra: Partial<SmtpClientPlan> = {}): SmtpClientPlan {
  return {
    name: "mx.test.",
    addr: "127.0.0.1",
    port,
    ehloDomain: "client.test",
    enableTls: "Opportunistic",
    enablePipelining: true,
    enableRset: true,
    ignore8bit: false,
    timeouts: { ...defaultTimeouts(), connect: 2000, banner: 2000 },
    ...extra,
  };
}

Deno.test("classifyReply() maps codes per §5.3", () => {
  const table: [number, string][] = [
    [250, "Delivery"],
    [251, "Delivery"],
    [354, "TransientFailure"],
    [421, "TransientFailure"],
    [451, "TransientFailure"],
    [503, "TransientFailure"],
    [550, "Bounce"],
    [554, "Bounce"],
    [599, "Bounce"],
  ];
  for (const [code, want] of table) assert.equal(classifyReply(code), want, String(code));
});

Deno.test("encodeProxyV2() encodes an IPv4 TCP header", () => {
  const h = encodeProxyV2({ address: "10.0.0.1", port: 0 }, { address: "192.0.2.7", port: 25 });
  assert.equal(h.length, 28);
  assert.deepEqual([...h.subarray(12, 16)], [0x21, 0x11, 0, 12]);
  assert.deepEqual([...h.subarray(16, 24)], [10, 0, 0, 1, 192, 0, 2, 7]);
  assert.deepEqual([...h.subarray(24, 28)], [0, 0, 0, 25]);
});

Deno.test("SmtpClient sends from the source address with EHLO name, dot-stuffed, reusing the connection", async () => {
  await using sink = await startSmtpSink({ addresses: ["127.0.0.1"] });
  const c = await SmtpClient.connect(plan(sink.port, { sourceAddress: "127.0.0.3" }));
  const data = enc.encode(".leading dot\r\nbody\r\n");
  const r1 = await c.send({ sender: "a@x.test", recipients: ["b@y.test", "c@y.test"], data });
  assert.deepEqual(r1.map((r) => r.code), [250, 250]);
  assert.equal(r1[0].command, ".\r\n");
  const r2 = await c.send({ sender: "", recipients: ["d@y.test"], data: enc.encode("x\r\n") });
  assert.equal(r2[0].code, 250);
  await c.quit();
  await sink.waitFor(2, 2000);
  assert.equal(sink.messages[0].remoteAddress, "127.0.0.3");
  assert.equal(sink.messages[0].ehlo, "client.test");
  assert.deepEqual(sink.messages[0].rcptTo, ["b@y.test", "c@y.test"]);
  assert.equal(new TextDecoder().decode(sink.messages[0].data), ".leading dot\r\nbody\r\n");
  assert.equal(sink.connections.length, 1);
});

Deno.test("SmtpClient reports per-recipient RCPT and final replies", async () => {
  await using sink = await startSmtpSink({
    replies: (stage, arg) => {
      if (stage === "rcpt" && arg.includes("bad@")) {
        return { code: 550, text: "5.1.1 no such user" };
      }
      if (stage === "rcpt" && arg.includes("later@")) return { code: 451, text: "4.3.0 try later" };
      return undefined;
    },
  });
  const c = await SmtpClient.connect(plan(sink.port));
  const r = await c.send({
    sender: "a@x.test",
    recipients: ["ok@y.test", "bad@y.test", "later@y.test"],
    data: enc.encode("hi\r\n"),
  });
  assert.deepEqual(r.map((x) => x.code), [250, 550, 451]);
  assert.deepEqual(r[1].enhanced, { class: 5, subject: 1, detail: 1 });
  assert.equal(r[1].text, "no such user");
  assert.equal(r[1].command, "RCPT TO:<bad@y.test>\r\n");
  const all = await c.send({
    sender: "a@x.test",
    recipients: ["bad@y.test"],
    data: enc.encode("x\r\n"),
  });
  assert.equal(all[0].code, 550);
  await c.quit();
});

Deno.test("SmtpClient with enable_tls=Required fails against a server without STARTTLS", async () => {
  await using sink = await startSmtpSink();
  await assert.rejects(
    () => SmtpClient.connect(plan(sink.port, { enableTls: "Required" })),
    ConnectError,
  );
});

Deno.test("SmtpClient bounces 8-bit data internally when 8BITMIME is missing", async () => {
  await using sink = await startSmtpSink({ ehloExtensions: ["ENHANCEDSTATUSCODES"] });
  const c = await SmtpClient.connect(plan(sink.port));
  const r = await c.send({
    sender: "a@x.test",
    recipients: ["b@y.test"],
    data: enc.encode("h\u00e9\r\n"),
  });
  assert.equal(r[0].code, 554);
  assert.deepEqual(r[0].enhanced, { class: 5, subject: 6, detail: 3 });
  await c.quit();
});

Deno.test("SmtpClient.connect() fails on a closed port", async () => {
  await using sink = await startSmtpSink();
  const port = sink.port;
  await sink.close();
  await assert.rejects(() => SmtpClient.connect(plan(port)), ConnectError);
});

Deno.test("SmtpClient AUTH PLAIN: refused without TLS unless allowed, then sent", async () => {
  // A minimal server that offers AUTH PLAIN and checks the token.
  const net = await import("node:net");
  const seen: string[] = [];
  const srv = net.createServer((s) => {
    s.write("220 auth.test ESMTP\r\n");
    let buf = "";
    s.on("data", (d) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf("\r\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        seen.push(line);
        if (line.startsWith("EHLO")) s.write("250-auth.test\r\n250 AUTH PLAIN\r\n");
        else if (line.startsWith("AUTH PLAIN ")) {
          const ok = atob(line.slice(11)) === "\0user\0secret";
          s.write(ok ? "235 2.7.0 ok\r\n" : "535 5.7.8 bad\r\n");
        } else if (line === "QUIT") s.end("221 bye\r\n");
      }
    });
    s.on("error", () => {});
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  try {
    const auth = {
      username: "user",
      password: "secret",
      allowWithoutTls: false,
      allowWithoutValidCertificate: false,
    };
    await assert.rejects(
      () => SmtpClient.connect(plan(port, { enableTls: "Disabled", auth })),
      /not protected by TLS/,
    );
    assert.ok(!seen.some((l) => l.startsWith("AUTH")), "no credentials in clear text");
    const c = await SmtpClient.connect(
      plan(port, { enableTls: "Disabled", auth: { ...auth, allowWithoutTls: true } }),
    );
    await c.quit();
    assert.ok(seen.includes(`AUTH PLAIN ${btoa("\0user\0secret")}`));
    await assert.rejects(
      () =>
        SmtpClient.connect(
          plan(port, {
            enableTls: "Disabled",
            auth: { ...auth, password: "wrong", allowWithoutTls: true },
          }),
        ),
      /AUTH PLAIN rejected .*535/,
    );
  } finally {
    await new Promise((r) => srv.close(r));
  }
});
