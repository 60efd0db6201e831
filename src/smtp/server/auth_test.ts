/**
 * Unit tests for the AUTH helpers (PLAIN, LOGIN) of the inbound session.
 * Place on the path: SMTP server, below the session's AUTH handler.
 */
import assert from "node:assert/strict";
import {
  authVerdict,
  decodeLoginField,
  decodePlain,
  needTls,
  unsupportedMechanism,
} from "./auth.ts";

Deno.test("decodePlain() splits authz/authc/password and defaults authz", () => {
  assert.deepEqual(decodePlain(btoa("\0alice\0pw")), {
    authz: "alice",
    authc: "alice",
    password: "pw",
  });
  assert.deepEqual(decodePlain(btoa("boss\0alice\0pw")), {
    authz: "boss",
    authc: "alice",
    password: "pw",
  });
  assert.equal(decodePlain("%%%"), "badBase64");
  assert.equal(decodePlain(btoa("no-nul")), "badPlain");
  assert.equal(decodePlain("="), "badPlain");
});

Deno.test("authVerdict() accepts booleans and AuthInfo, rejects nil", () => {
  assert.deepEqual(authVerdict(true), { ok: true });
  assert.deepEqual(authVerdict(false), { ok: false });
  const info = { identities: [{ identity: "a", context: "x" }] };
  assert.deepEqual(authVerdict(info), { ok: true, authInfo: info });
  assert.throws(() => authVerdict(undefined), TypeError);
  assert.deepEqual(unsupportedMechanism("CRAM-MD5"), {
    code: 504,
    text: "5.5.4 AUTH CRAM-MD5 not supported",
  });
});

Deno.test("decodeLoginField() decodes one AUTH LOGIN response", () => {
  assert.deepEqual(decodeLoginField(btoa("alice"), "username"), { value: "alice" });
  assert.deepEqual(decodeLoginField("=", "password"), { value: "" });
  assert.equal(decodeLoginField("=", "username"), "badLogin");
  assert.equal(decodeLoginField(btoa("a\0b"), "username"), "badLogin");
  assert.equal(decodeLoginField("%%%", "password"), "badBase64");
  assert.equal(decodeLoginField(btoa("\xff"), "password"), "badLogin");
});

Deno.test("needTls() names PLAIN or LOGIN", () => {
  assert.equal(needTls("PLAIN").text, "5.7.11 AUTH PLAIN requires an encrypted channel");
  assert.equal(needTls("LOGIN").text, "5.7.11 AUTH LOGIN requires an encrypted channel");
  assert.equal(needTls("XOAUTH2").text, "5.7.11 AUTH PLAIN requires an encrypted channel");
});
