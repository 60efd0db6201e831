// Golden table for dotStuff / dotStuffParts, and a round trip through LineReader.
import assert from "node:assert/strict";
import { dotStuff, dotStuffParts } from "./dot_stuff.ts";
import { type DataEvent, LineReader } from "./line_reader.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("dotStuff() golden table", () => {
  const table: [string, string][] = [
    ["", ".\r\n"],
    ["hi\r\n", "hi\r\n.\r\n"],
    ["hi", "hi\r\n.\r\n"],
    [".first\r\n", "..first\r\n.\r\n"],
    ["a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"],
    ["a\r\n..b\r\n.", "a\r\n...b\r\n..\r\n.\r\n"],
    ["a.b\r\nc. d\r\n", "a.b\r\nc. d\r\n.\r\n"],
    [".\n.", "..\n..\r\n.\r\n"],
    ["x\r\n\r\n", "x\r\n\r\n.\r\n"],
  ];
  for (const [input, want] of table) {
    assert.equal(dec.decode(dotStuff(enc.encode(input))), want, JSON.stringify(input));
    assert.equal(
      dotStuffParts(enc.encode(input)).map((p) => dec.decode(p)).join(""),
      want,
      JSON.stringify(input),
    );
  }
});

Deno.test("dotStuffParts() does not copy a body without leading dots", () => {
  const body = enc.encode("Subject: x\r\n\r\nno dots. here.\r\n");
  const parts = dotStuffParts(body);
  assert.equal(parts.length, 2);
  assert.equal(parts[0], body);
  assert.equal(dec.decode(parts[1]), ".\r\n");
  const stuffed = dotStuffParts(enc.encode(".x\r\n"));
  assert.equal(stuffed.length, 1);
});

Deno.test("dotStuff() output is read back unchanged by LineReader", () => {
  const bodies = [
    "",
    "a\r\n",
    ".\r\n",
    "..\r\n",
    ".a\r\n.b\r\n..c\r\n",
    "Subject: t\r\n\r\n.\r\n.\r\nend\r\n",
  ];
  for (const body of bodies) {
    const r = new LineReader();
    r.startData();
    r.push(dotStuff(enc.encode(body)));
    r.push(enc.encode("QUIT\r\n"));
    const ev = r.next() as DataEvent;
    assert.equal(ev.kind, "data", JSON.stringify(body));
    assert.equal(dec.decode(ev.body), body, JSON.stringify(body));
    assert.deepEqual(r.next(), { kind: "line", line: "QUIT" });
  }
});
