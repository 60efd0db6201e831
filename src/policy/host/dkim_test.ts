/**
 * Unit tests for makeSigner() (`kumo.dkim.*_signer`, src/policy/host/dkim.ts).
 * Place on the path: policy, signing at smtp_server_message_received.
 */
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { makeSigner } from "./dkim.ts";

const rsaPem = crypto.generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey
  .export({ type: "pkcs8", format: "pem" }) as string;
const edPem = crypto.generateKeyPairSync("ed25519").privateKey
  .export({ type: "pkcs8", format: "pem" }) as string;

const base = { domain: "shop.test", selector: "s1", headers: ["From"] };

Deno.test("makeSigner() takes the key type from the key data", () => {
  assert.equal(makeSigner({ ...base, key: { key_data: rsaPem } }).keyType, "rsa");
  assert.equal(makeSigner({ ...base, key: { key_data: edPem } }).keyType, "ed25519");
});

Deno.test("makeSigner() refuses the parameters upstream does not support", () => {
  for (
    const [k, v] of [["atps", "x.test"], ["atpsh", "sha256"], ["agent_user_identifier", "@x"], [
      "body_length",
      true,
    ], ["reporting", true]] as const
  ) {
    assert.throws(
      () => makeSigner({ ...base, key: { key_data: rsaPem }, [k]: v }),
      new RegExp(`${k} is not currently supported`),
    );
  }
});

Deno.test("makeSigner() requires domain, selector, headers and key", () => {
  assert.throws(() => makeSigner({ domain: "a.test", selector: "s", headers: ["From"] }), /key/);
  assert.throws(
    () => makeSigner({ ...base, key: "/nonexistent/key.pem" }),
    /Cannot load DKIM key for domain "shop.test"/,
  );
});
