// Golden tables for parseCommand and the client-side encoders.
import assert from "node:assert/strict";
import { type Command, encodeMailFrom, encodeRcptTo, parseCommand } from "./command.ts";
import { formatSmtpReply } from "./reply.ts";
import { NULL_SENDER, parseEnvelopeAddress } from "../../message/envelope_address.ts";

const addr = (s: string) => parseEnvelopeAddress(s);

/** Wire reply for an Invalid result, or null. */
function replyOf(c: Command): string | null {
  return c.verb === "Invalid" ? formatSmtpReply(c.reply) : null;
}

const OK: [string, Command][] = [
  ["EHLO client.test", { verb: "EHLO", domain: "client.test" }],
  ["ehlo [192.0.2.1]", { verb: "EHLO", domain: "[192.0.2.1]" }],
  ["HELO x", { verb: "HELO", domain: "x" }],
  ["LHLO x", { verb: "LHLO", domain: "x" }],
  ["MAIL FROM:<a@b.test>", { verb: "MAIL", address: addr("a@b.test"), params: new Map() }],
  ["MAIL FROM: <a@b.test>", { verb: "MAIL", address: addr("a@b.test"), params: new Map() }],
  ["mail from:<a@b.test>", { verb: "MAIL", address: addr("a@b.test"), params: new Map() }],
  ["MAIL FROM:<>", { verb: "MAIL", address: NULL_SENDER, params: new Map() }],
  [
    "MAIL FROM:<a@b.test> SIZE=1000 body=8bitmime SMTPUTF8",
    {
      verb: "MAIL",
      address: addr("a@b.test"),
      params: new Map<string, string | null>([["SIZE", "1000"], ["BODY", "8BITMIME"], [
        "SMTPUTF8",
        null,
      ]]),
    },
  ],
  [
    "MAIL FROM:<> BODY=7BIT",
    { verb: "MAIL", address: NULL_SENDER, params: new Map([["BODY", "7BIT"]]) },
  ],
  [
    'MAIL FROM:<"x>y"@b.test>',
    { verb: "MAIL", address: addr('"x>y"@b.test'), params: new Map() },
  ],
  ["RCPT TO:<c@d.test>", { verb: "RCPT", address: addr("c@d.test"), params: new Map() }],
  ["RCPT TO: <c@d.test>", { verb: "RCPT", address: addr("c@d.test"), params: new Map() }],
  [
    "RCPT TO:<postmaster>",
    {
      verb: "RCPT",
      address: { user: "postmaster", domain: "", email: "postmaster" },
      params: new Map(),
    },
  ],
  [
    "RCPT TO:<PostMaster>",
    {
      verb: "RCPT",
      address: { user: "PostMaster", domain: "", email: "PostMaster" },
      params: new Map(),
    },
  ],
  [
    "RCPT TO:<c@d.test> NOTIFY=NEVER",
    { verb: "RCPT", address: addr("c@d.test"), params: new Map([["NOTIFY", "NEVER"]]) },
  ],
  ["DATA", { verb: "DATA" }],
  ["data", { verb: "DATA" }],
  ["RSET", { verb: "RSET" }],
  ["QUIT", { verb: "QUIT" }],
  ["STARTTLS", { verb: "STARTTLS" }],
  ["NOOP", { verb: "NOOP", argument: "" }],
  ["NOOP hello there", { verb: "NOOP", argument: "hello there" }],
  ["HELP", { verb: "HELP", argument: "" }],
  ["VRFY bob", { verb: "VRFY", argument: "bob" }],
  ["EXPN list", { verb: "EXPN", argument: "list" }],
  ["AUTH PLAIN", { verb: "AUTH", mechanism: "PLAIN" }],
  ["auth plain AGEAYg==", { verb: "AUTH", mechanism: "PLAIN", initialResponse: "AGEAYg==" }],
  ["AUTH LOGIN", { verb: "AUTH", mechanism: "LOGIN" }],
  [
    "XCLIENT ADDR=192.0.2.7 PORT=4000 NAME=a+2Bb",
    {
      verb: "XCLIENT",
      attributes: new Map([["ADDR", "192.0.2.7"], ["PORT", "4000"], ["NAME", "a+b"]]),
    },
  ],
  ["FOO bar", { verb: "Unknown", name: "FOO", argument: "bar" }],
  ["", { verb: "Unknown", name: "", argument: "" }],
  ["MAILFROM:<a@b>", { verb: "Unknown", name: "MAILFROM:<a@b>", argument: "" }],
];

Deno.test("parseCommand() parses valid commands", () => {
  for (const [line, want] of OK) {
    assert.deepEqual(parseCommand(line), want, line);
  }
});

const ERR: [string, string][] = [
  [
    "MAIL FROM:<a@b.test:25>",
    "501 5.1.7 Invalid sender address syntax: port not allowed in domain\r\n",
  ],
  ["MAIL FROM:<a@>", "501 5.1.7 Invalid sender address syntax: missing domain\r\n"],
  ["MAIL FROM:a@b.test", "501 5.1.7 Invalid sender address syntax: expected <address>\r\n"],
  ["MAIL FROM:<a@b.test", "501 5.1.7 Invalid sender address syntax: expected <address>\r\n"],
  ["RCPT TO:<c@d.test:25>", "501 5.1.3 Invalid recipient address syntax\r\n"],
  ["RCPT TO:<>", "501 5.1.3 Invalid recipient address syntax\r\n"],
  ["RCPT TO:c@d.test", "501 5.1.3 Invalid recipient address syntax\r\n"],
  ["RCPT TO:<a b@d.test>", "501 5.1.3 Invalid recipient address syntax\r\n"],
  ["MAIL <a@b.test>", "501 Syntax error in command or arguments: expected MAIL FROM:<address>\r\n"],
  ["MAIL", "501 Syntax error in command or arguments: expected MAIL FROM:<address>\r\n"],
  [
    "RCPT FROM:<a@b.test>",
    "501 Syntax error in command or arguments: expected RCPT TO:<address>\r\n",
  ],
  [
    "MAIL FROM:<a@b.test>SIZE=1",
    "501 Syntax error in command or arguments: expected a space before parameters\r\n",
  ],
  [
    "MAIL FROM:<a@b.test> SIZE=abc",
    "501 Syntax error in command or arguments: invalid SIZE parameter\r\n",
  ],
  [
    "MAIL FROM:<a@b.test> SIZE",
    "501 Syntax error in command or arguments: invalid SIZE parameter\r\n",
  ],
  [
    "MAIL FROM:<a@b.test> BODY=",
    '501 Syntax error in command or arguments: invalid parameter "BODY="\r\n',
  ],
  [
    "MAIL FROM:<a@b.test> =x",
    '501 Syntax error in command or arguments: invalid parameter "=x"\r\n',
  ],
  [
    "MAIL FROM:<a@b.test> A=1 a=2",
    '501 Syntax error in command or arguments: duplicate parameter "A"\r\n',
  ],
  ["EHLO", "501 Syntax error in command or arguments: EHLO requires a domain\r\n"],
  ["HELO a b", "501 Syntax error in command or arguments: unexpected text after HELO domain\r\n"],
  ["DATA now", "501 Syntax error in command or arguments: DATA takes no arguments\r\n"],
  ["STARTTLS x", "501 Syntax error in command or arguments: STARTTLS takes no arguments\r\n"],
  ["AUTH", "501 Syntax error in command or arguments: AUTH requires a mechanism\r\n"],
  ["AUTH PLAIN a b", "501 Syntax error in command or arguments: too many arguments\r\n"],
  ["XCLIENT", "501 Syntax error in command or arguments: XCLIENT requires attributes\r\n"],
  [
    "XCLIENT ADDR=1+zz",
    '501 Syntax error in command or arguments: invalid attribute "ADDR=1+zz"\r\n',
  ],
  ["VRFY", "501 Syntax error in command or arguments: VRFY requires an argument\r\n"],
];

Deno.test("parseCommand() returns the exact reply for syntax errors", () => {
  for (const [line, wire] of ERR) {
    assert.equal(replyOf(parseCommand(line)), wire, line);
  }
});

Deno.test("parseCommand() reports which verb was attempted", () => {
  const c = parseCommand("rcpt to:<bad");
  assert.equal(c.verb, "Invalid");
  if (c.verb === "Invalid") assert.equal(c.attempted, "RCPT");
});

Deno.test("parseCommand() tolerates trailing spaces", () => {
  assert.deepEqual(parseCommand("RSET  "), { verb: "RSET" });
  assert.deepEqual(parseCommand("MAIL FROM:<a@b.test> "), {
    verb: "MAIL",
    address: addr("a@b.test"),
    params: new Map(),
  });
});

Deno.test("encodeMailFrom() and encodeRcptTo() render the client commands", () => {
  assert.equal(encodeMailFrom(NULL_SENDER), "MAIL FROM:<>\r\n");
  assert.equal(encodeMailFrom(addr("a@b.test"), {}), "MAIL FROM:<a@b.test>\r\n");
  assert.equal(
    encodeMailFrom(addr("a@b.test"), { eightBit: true, smtputf8: true }),
    "MAIL FROM:<a@b.test> BODY=8BITMIME SMTPUTF8\r\n",
  );
  assert.equal(
    encodeMailFrom(addr("a@b.test"), { smtputf8: true }),
    "MAIL FROM:<a@b.test> SMTPUTF8\r\n",
  );
  assert.equal(encodeRcptTo(addr('"j d"@x.test')), 'RCPT TO:<"j d"@x.test>\r\n');
  assert.equal(encodeRcptTo({ user: "postmaster", domain: "" }), "RCPT TO:<postmaster>\r\n");
  // What the client encodes, the server parses back to the same address.
  for (const a of ["a@b.test", '"j d"@x.test', "u@[IPv6:::1]", "ü@ä.test"]) {
    const c = parseCommand(encodeRcptTo(addr(a)).slice(0, -2));
    assert.equal(c.verb, "RCPT");
    if (c.verb === "RCPT") assert.deepEqual(c.address, addr(a));
  }
});
