/**
 * Unit tests for parseListenerDomain() (`kumo.make_listener_domain`). Place
 * on the path: policy configuration, read at RCPT and end of DATA.
 */
import assert from "node:assert/strict";
import { listenerDomainToJSON, parseListenerDomain } from "./listener_domain.ts";

Deno.test("parseListenerDomain() defaults", () => {
  const d = parseListenerDomain({});
  assert.equal(d.relayTo, false);
  assert.equal(d.relayFrom.size, 0);
  assert.equal(d.logOob, "Ignore");
  assert.equal(d.logArf, "Ignore");
  assert.equal(d.ttl, 60_000);
  assert.deepEqual(listenerDomainToJSON(d), {
    relay_to: false,
    relay_from: [],
    log_oob: "Ignore",
    log_arf: "Ignore",
    ttl: "1m",
  });
});

Deno.test("parseListenerDomain() normalises log_oob / log_arf", () => {
  assert.equal(parseListenerDomain({ log_oob: true }).logOob, "LogThenRelay");
  assert.equal(parseListenerDomain({ log_oob: false }).logOob, "Ignore");
  assert.equal(parseListenerDomain({ log_arf: "LogThenDrop" }).logArf, "LogThenDrop");
  assert.equal(parseListenerDomain({ log_arf: "LogThenRelay" }).logArf, "LogThenRelay");
  assert.throws(
    () => parseListenerDomain({ log_arf: "logthendrop" }),
    /unknown variant `logthendrop`, expected one of `Ignore`, `LogThenRelay`, `LogThenDrop`/,
  );
  assert.throws(() => parseListenerDomain({ log_oob: 1 }), /invalid type: integer `1`/);
});

Deno.test("parseListenerDomain() relay_from and unknown keys", () => {
  const d = parseListenerDomain({ relay_to: true, relay_from: ["10.0.0.0/24"] });
  assert.ok(d.relayFrom.contains("10.0.0.7"));
  assert.throws(
    () => parseListenerDomain({ relay_from_authz: ["u"] }),
    /unknown field `relay_from_authz`, expected one of `relay_to`, `relay_from`, `log_oob`, `log_arf`, `ttl`, while processing \{"relay_from_authz":\["u"\]\}/,
  );
});
