// Golden tables for parseEnvelopeAddress / formatEnvelopeAddress.
import assert from "node:assert/strict";
import {
  AddressSyntaxError,
  formatEnvelopeAddress,
  isNonAsciiAddress,
  makeEnvelopeAddress,
  NULL_SENDER,
  parseEnvelopeAddress,
} from "./envelope_address.ts";

const GOOD: [string, string, string, string][] = [
  // input, user, domain, email
  ["a@b.test", "a", "b.test", "a@b.test"],
  ["First.Last+tag@Example.COM", "First.Last+tag", "Example.COM", "First.Last+tag@Example.COM"],
  ["!#$%&'*+-/=?^_`{|}~@x.test", "!#$%&'*+-/=?^_`{|}~", "x.test", "!#$%&'*+-/=?^_`{|}~@x.test"],
  ['"john doe"@x.test', "john doe", "x.test", '"john doe"@x.test'],
  ['"plain"@x.test', "plain", "x.test", "plain@x.test"],
  ['"a\\"b\\\\c"@x.test', 'a"b\\c', "x.test", '"a\\"b\\\\c"@x.test'],
  ['"a>b@c"@x.test', "a>b@c", "x.test", '"a>b@c"@x.test'],
  ['""@x.test', "", "x.test", '""@x.test'],
  ["u@[192.0.2.1]", "u", "[192.0.2.1]", "u@[192.0.2.1]"],
  ["u@[IPv6:2001:db8::1]", "u", "[IPv6:2001:db8::1]", "u@[IPv6:2001:db8::1]"],
  ["u@[ipv6:::1]", "u", "[ipv6:::1]", "u@[ipv6:::1]"],
  ["@relay.test,@r2.test:u@d.test", "u", "d.test", "u@d.test"],
  ["δοκιμή@παράδειγμα.δοκιμή", "δοκιμή", "παράδειγμα.δοκιμή", "δοκιμή@παράδειγμα.δοκιμή"],
  ["a@x-y.z9.test", "a", "x-y.z9.test", "a@x-y.z9.test"],
  ["a@localhost", "a", "localhost", "a@localhost"],
];

Deno.test("parseEnvelopeAddress() accepts valid mailboxes", () => {
  for (const [input, user, domain, email] of GOOD) {
    assert.deepEqual(parseEnvelopeAddress(input), { user, domain, email }, input);
  }
});

const BAD: [string, RegExp][] = [
  ["a", /missing '@'/],
  ["a@", /missing domain/],
  ["@b.test", /source route/],
  ["a..b@x.test", /invalid local part/],
  [".a@x.test", /invalid local part/],
  ["a.@x.test", /invalid local part/],
  ["a b@x.test", /invalid local part/],
  ["a@b.test:25", /port not allowed/],
  ["a@b.test:", /port not allowed/],
  ["a@[192.0.2.1]:25", /port not allowed/],
  ["a@[192.0.2.256]", /invalid address literal/],
  ["a@[IPv6:zz::1]", /invalid IPv6/],
  ["a@[192.0.2.1", /unterminated address literal/],
  ["a@-b.test", /invalid domain/],
  ["a@b-.test", /invalid domain/],
  ["a@b..test", /invalid domain/],
  ["a@b.test.", /invalid domain/],
  ["a@b@c.test", /invalid domain/],
  ["a@b_c.test", /invalid domain/],
  ['"abc@x.test', /unterminated quoted/],
  ['"a"b@x.test', /expected '@'/],
  ['"a\tb"@x.test', /control character/],
];

Deno.test("parseEnvelopeAddress() rejects bad syntax with a typed error", () => {
  for (const [input, reason] of BAD) {
    assert.throws(
      () => parseEnvelopeAddress(input),
      (e: unknown) =>
        e instanceof AddressSyntaxError && e instanceof SyntaxError && reason.test(e.reason),
      input,
    );
  }
});

Deno.test("parseEnvelopeAddress() error message follows the project wording", () => {
  try {
    parseEnvelopeAddress("a@b.test:25");
    assert.fail("no throw");
  } catch (e) {
    assert.ok(e instanceof AddressSyntaxError);
    assert.equal(e.message, 'Cannot parse address "a@b.test:25": port not allowed in domain');
    assert.equal(e.address, "a@b.test:25");
  }
});

Deno.test("parseEnvelopeAddress() gives the null sender for an empty string", () => {
  assert.equal(parseEnvelopeAddress(""), NULL_SENDER);
  assert.deepEqual(NULL_SENDER, { user: "", domain: "", email: "" });
});

Deno.test("formatEnvelopeAddress() re-quotes local parts that need it", () => {
  assert.equal(formatEnvelopeAddress({ user: "a", domain: "b.test" }), "a@b.test");
  assert.equal(formatEnvelopeAddress({ user: "a b", domain: "b.test" }), '"a b"@b.test');
  assert.equal(formatEnvelopeAddress({ user: 'q"\\', domain: "b" }), '"q\\"\\\\"@b');
  assert.equal(formatEnvelopeAddress(NULL_SENDER), "");
  assert.equal(makeEnvelopeAddress("Postmaster", "").email, "Postmaster");
  // Round trip through the parser.
  for (const [input] of GOOD) {
    const a = parseEnvelopeAddress(input);
    assert.deepEqual(parseEnvelopeAddress(formatEnvelopeAddress(a)), a, input);
  }
});

Deno.test("isNonAsciiAddress() detects UTF-8 addresses", () => {
  assert.equal(isNonAsciiAddress(parseEnvelopeAddress("a@b.test")), false);
  assert.equal(isNonAsciiAddress(parseEnvelopeAddress("ä@b.test")), true);
});
