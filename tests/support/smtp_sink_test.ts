/**
 * Tests of the loopback SMTP sink (tests/support/smtp_sink.ts) with real
 * clients. Test support only: the delivery end of scenario tests.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { Buffer } from "node:buffer";
import { startSmtpSink } from "./smtp_sink.ts";

/** Run a Python snippet; fails the test with its stderr when it exits non-zero. */
async function python(script: string): Promise<string> {
  const out = await new Deno.Command("python3", {
    args: ["-c", script],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `python3 failed: ${stderr}`);
  return new TextDecoder().decode(out.stdout);
}

/** A minimal line-reading client over node:net. */
async function rawClient(host: string, port: number, localAddress?: string) {
  const sock = net.connect({ host, port, localAddress });
  sock.setNoDelay(true);
  let buf = "";
  const waiting: (() => void)[] = [];
  sock.on("data", (chunk: Buffer) => {
    buf += chunk.toString("latin1");
    waiting.splice(0).forEach((w) => w());
  });
  await new Promise<void>((resolve, reject) => {
    sock.once("connect", resolve);
    sock.once("error", reject);
  });
  /** Read `n` complete replies (multi-line replies count once). */
  const replies = async (n: number): Promise<string[]> => {
    const deadline = Date.now() + 5000;
    while (true) {
      const lines = buf.split("\r\n");
      const done: string[] = [];
      let consumed = 0;
      for (let i = 0; i < lines.length - 1 && done.length < n; i++) {
        consumed += lines[i].length + 2;
        if (lines[i][3] === " ") done.push(lines[i]);
      }
      if (done.length === n) {
        buf = buf.slice(consumed);
        return done;
      }
      assert.ok(
        Date.now() < deadline,
        `timed out waiting for ${n} replies, have ${JSON.stringify(buf)}`,
      );
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 100);
        waiting.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  };
  const closed = new Promise<void>((resolve) => sock.once("close", () => resolve()));
  return {
    sock,
    replies,
    closed,
    write: (s: string | Uint8Array) => sock.write(s),
    async close() {
      sock.destroy();
      await closed;
    },
  };
}

Deno.test("smtp sink receives a message from Python smtplib", async () => {
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2", "127.0.0.3"] });
  await python(`
import smtplib
s = smtplib.SMTP("127.0.0.3", ${sink.port}, local_hostname="client.test")
s.sendmail("from@example.test", ["a@example.net", "b@example.net"],
  "Subject: hi\\r\\n\\r\\n.leading dot\\r\\nbody\\r\\n")
s.quit()
`);
  const [msg] = await sink.waitFor(1, 5000);
  assert.equal(msg.localAddress, "127.0.0.3");
  assert.equal(msg.localPort, sink.port);
  assert.equal(msg.ehlo, "client.test");
  assert.equal(msg.mailFrom, "from@example.test");
  assert.deepEqual(msg.rcptTo, ["a@example.net", "b@example.net"]);
  assert.equal(new TextDecoder().decode(msg.data), "Subject: hi\r\n\r\n.leading dot\r\nbody\r\n");
  assert.equal(msg.tls, false);
  assert.equal(sink.connections.length, 1);
  assert.equal(sink.connections[0].messages, 1);
});

Deno.test("smtp sink handles pipelined commands, dot-stuffing and several messages per connection", async () => {
  await using sink = await startSmtpSink({ addresses: ["127.0.0.2"] });
  const c = await rawClient("127.0.0.2", sink.port, "127.0.0.9");
  try {
    assert.match((await c.replies(1))[0], /^220 /);
    c.write("EHLO pipe.test\r\n");
    const [ehlo] = await c.replies(1);
    assert.match(ehlo, /^250 /);
    c.write(
      "MAIL FROM:<s@pipe.test> BODY=8BITMIME\r\nRCPT TO:<r1@x.test>\r\nRCPT TO:<r2@x.test>\r\nDATA\r\n",
    );
    assert.deepEqual((await c.replies(4)).map((r) => r.slice(0, 3)), ["250", "250", "250", "354"]);
    // Body, terminator and the next transaction all in one write.
    c.write("..one\r\ntwo\r\n...\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<r3@x.test>\r\nDATA\r\n");
    assert.deepEqual((await c.replies(4)).map((r) => r.slice(0, 3)), ["250", "250", "250", "354"]);
    c.write(".\r\nQUIT\r\n");
    assert.deepEqual((await c.replies(2)).map((r) => r.slice(0, 3)), ["250", "221"]);
  } finally {
    await c.close();
  }
  assert.equal(sink.messages.length, 2);
  const [first, second] = sink.messages;
  assert.equal(first.remoteAddress, "127.0.0.9");
  assert.deepEqual(first.rcptTo, ["r1@x.test", "r2@x.test"]);
  assert.equal(new TextDecoder().decode(first.data), ".one\r\ntwo\r\n..\r\n");
  assert.equal(second.mailFrom, "");
  assert.equal(second.data.length, 0);
  for (let i = 0; i < 50 && sink.connections[0].closedAt === undefined; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.ok(sink.connections[0].closedAt !== undefined, "the sink saw the close");
  assert.equal(sink.concurrent, 0);
});

Deno.test("smtp sink takes a large body split across many writes", async () => {
  await using sink = await startSmtpSink();
  const c = await rawClient("127.0.0.1", sink.port);
  const line = "x".repeat(998) + "\r\n";
  const body = line.repeat(8 * 1024); // ~8 MB
  try {
    await c.replies(1);
    c.write("EHLO big.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n");
    await c.replies(4);
    const bytes = Buffer.from(body + ".\r\n");
    for (let i = 0; i < bytes.length; i += 65521) c.write(bytes.subarray(i, i + 65521));
    assert.match((await c.replies(1))[0], /^250 /);
  } finally {
    await c.close();
  }
  assert.equal(sink.messages[0].data.length, body.length);
  assert.equal(Buffer.from(sink.messages[0].data).toString("latin1"), body);
});

Deno.test("smtp sink replies hook rejects chosen stages", async () => {
  await using sink = await startSmtpSink({
    replies: (stage, arg) => {
      if (stage === "rcpt" && arg.startsWith("bad")) {
        return { code: 550, text: "5.1.1 No such user" };
      }
      if (stage === "rcpt" && arg.startsWith("later")) {
        return { code: 451, text: "4.3.0 Try later" };
      }
      if (stage === "message" && sink.messages.length > 0) {
        return { code: 554, text: "5.6.0 Rejected" };
      }
      return undefined;
    },
  });
  const c = await rawClient("127.0.0.1", sink.port);
  try {
    await c.replies(1);
    c.write(
      "EHLO h.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<bad@x.test>\r\nRCPT TO:<later@x.test>\r\n",
    );
    c.write("RCPT TO:<good@x.test>\r\nDATA\r\n");
    const codes = (await c.replies(6)).map((r) => r.slice(0, 3));
    assert.deepEqual(codes, ["250", "250", "550", "451", "250", "354"]);
    c.write("hello\r\n.\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<good@x.test>\r\nDATA\r\n");
    assert.deepEqual((await c.replies(4)).map((r) => r.slice(0, 3)), ["250", "250", "250", "354"]);
    c.write("again\r\n.\r\n");
    assert.match((await c.replies(1))[0], /^554 5\.6\.0/);
  } finally {
    await c.close();
  }
  assert.equal(sink.messages.length, 1);
  assert.deepEqual(sink.messages[0].rcptTo, ["good@x.test"]);
});

Deno.test("smtp sink 421 banner closes; connection high-water mark is tracked", async () => {
  await using sink = await startSmtpSink({
    addresses: ["127.0.0.2", "127.0.0.3"],
    replies: (stage, _arg, session) =>
      stage === "connect" && session.id === 3 ? { code: 421, text: "4.3.2 Busy" } : undefined,
  });
  const a = await rawClient("127.0.0.2", sink.port);
  const b = await rawClient("127.0.0.3", sink.port);
  await a.replies(1);
  await b.replies(1);
  assert.equal(sink.concurrent, 2);
  const c = await rawClient("127.0.0.2", sink.port);
  assert.match((await c.replies(1))[0], /^421 4\.3\.2 Busy/);
  await c.closed; // the sink hung up after the 421, not us
  await Promise.all([a.close(), b.close(), c.close()]);
  assert.equal(sink.maxConcurrent, 3);
  assert.deepEqual(sink.connections.map((x) => x.localAddress), [
    "127.0.0.2",
    "127.0.0.3",
    "127.0.0.2",
  ]);
  assert.ok(sink.connections.every((x) => x.connectedAt > 0));
});

Deno.test("smtp sink delays replies when asked", async () => {
  await using sink = await startSmtpSink({ delayMs: 150 });
  const started = Date.now();
  const c = await rawClient("127.0.0.1", sink.port);
  try {
    await c.replies(1);
    c.write("NOOP\r\n");
    await c.replies(1);
  } finally {
    await c.close();
  }
  assert.ok(Date.now() - started >= 290);
});

Deno.test("smtp sink offers STARTTLS and records TLS messages", async () => {
  await using sink = await startSmtpSink({ starttls: true, pipelining: false });
  if (!sink.tlsAvailable) {
    console.log("skipped: openssl is not available to make a certificate");
    return;
  }
  const out = await python(`
import smtplib, ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", ${sink.port}, local_hostname="tls.test")
s.ehlo()
print("PIPELINING" if s.has_extn("pipelining") else "no-pipelining")
s.starttls(context=ctx)
s.ehlo()
print("STARTTLS" if s.has_extn("starttls") else "no-starttls")
s.sendmail("a@b.test", ["c@d.test"], "Subject: tls\\r\\n\\r\\nsecret\\r\\n")
s.quit()
`);
  assert.deepEqual(out.trim().split("\n"), ["no-pipelining", "no-starttls"]);
  const [msg] = await sink.waitFor(1, 5000);
  assert.equal(msg.tls, true);
  assert.equal(sink.connections[0].tls, true);
  assert.equal(new TextDecoder().decode(msg.data), "Subject: tls\r\n\r\nsecret\r\n");
});

Deno.test("smtp sink waitFor() times out", async () => {
  await using sink = await startSmtpSink();
  await assert.rejects(sink.waitFor(1, 50), /only 0 after 50 ms/);
});
