import assert from "node:assert/strict";
import { authVerdict, decodePlain, unsupportedMechanism } from "./auth.ts";

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
  assert.deepEqual(unsupportedMechanism("LOGIN"), {
    code: 504,
    text: "5.5.4 AUTH LOGIN not supported",
  });
});
