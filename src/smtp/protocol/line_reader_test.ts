// Golden tables and a split-anywhere equivalence check for LineReader.
import assert from "node:assert/strict";
import {
  type DataEvent,
  type InvalidLineEndings,
  LineReader,
  type LineReaderOptions,
  type ReaderEvent,
} from "./line_reader.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string) => enc.encode(s);

/** A readable summary of an event, for golden comparisons. */
type Summary =
  | string
  | { data: string; size: number; tooLong: boolean; tooBig: boolean; badLineEndings: boolean };

function summarize(ev: ReaderEvent): Summary {
  switch (ev.kind) {
    case "line":
      return `line:${ev.line}`;
    case "too_long":
      return "too_long";
    case "invalid_utf8":
      return `invalid_utf8:${ev.bytes.length}`;
    case "data":
      return {
        data: dec.decode(ev.body),
        size: ev.size,
        tooLong: ev.tooLong,
        tooBig: ev.tooBig,
        badLineEndings: ev.badLineEndings,
      };
  }
}

/**
 * Drive a reader like the server does: push each chunk, drain events, and
 * enter data mode after every `DATA` line.
 */
function run(chunks: (string | Uint8Array)[], opts: LineReaderOptions = {}): Summary[] {
  const r = new LineReader(opts);
  const out: Summary[] = [];
  for (const c of chunks) {
    r.push(typeof c === "string" ? b(c) : c);
    for (let ev = r.next(); ev !== null; ev = r.next()) {
      out.push(summarize(ev));
      if (ev.kind === "line" && ev.line.toUpperCase() === "DATA") r.startData();
    }
  }
  return out;
}

const ok = (data: string, extra: Partial<Exclude<Summary, string>> = {}): Summary => ({
  data,
  size: b(data).length,
  tooLong: false,
  tooBig: false,
  badLineEndings: false,
  ...extra,
});

Deno.test("LineReader command mode golden table", () => {
  const table: [string, (string | Uint8Array)[], Summary[], LineReaderOptions?][] = [
    ["pipelined commands in one chunk", ["MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nNOOP\r\n"], [
      "line:MAIL FROM:<a@b>",
      "line:RCPT TO:<c@d>",
      "line:NOOP",
    ]],
    ["command split across chunks", ["MAIL FR", "OM:<a@b>\r", "\nRSET\r\n"], [
      "line:MAIL FROM:<a@b>",
      "line:RSET",
    ]],
    ["bare LF accepted in command mode", ["NOOP\nQUIT\r\n"], ["line:NOOP", "line:QUIT"]],
    ["empty line", ["\r\n"], ["line:"]],
    ["incomplete line waits", ["NOOP"], []],
    ["line at the limit", ["x".repeat(10) + "\r\n"], ["line:" + "x".repeat(10)], {
      lineLengthHardLimit: 10,
    }],
    ["over-long line in one chunk, then a normal one", ["x".repeat(11) + "\r\nNOOP\r\n"], [
      "too_long",
      "line:NOOP",
    ], { lineLengthHardLimit: 10 }],
    [
      "over-long line across chunks is reported once and skipped",
      ["x".repeat(8), "x".repeat(8), "y".repeat(30), "zz\r\nNO", "OP\r\n"],
      ["too_long", "line:NOOP"],
      { lineLengthHardLimit: 10 },
    ],
    [
      "limit+CR waiting for its LF is not too long",
      ["x".repeat(10) + "\r", "\nQUIT\r\n"],
      ["line:" + "x".repeat(10), "line:QUIT"],
      { lineLengthHardLimit: 10 },
    ],
    ["invalid UTF-8 then a valid line", [new Uint8Array([0x48, 0xff, 0x0d, 0x0a]), "NOOP ü\r\n"], [
      "invalid_utf8:2",
      "line:NOOP ü",
    ]],
    [
      "UTF-8 character split across chunks",
      [b("RCPT TO:<ü").subarray(0, 10), b("RCPT TO:<ü@x>\r\n").subarray(10)],
      ["line:RCPT TO:<ü@x>"],
    ],
  ];
  for (const [name, chunks, want, opts] of table) assert.deepEqual(run(chunks, opts), want, name);
});

Deno.test("LineReader data mode golden table", () => {
  const table: [string, (string | Uint8Array)[], Summary[], LineReaderOptions?][] = [
    ["simple body and pipelined QUIT", ["DATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n"], [
      "line:DATA",
      ok("Subject: x\r\n\r\nhi\r\n"),
      "line:QUIT",
    ]],
    ["empty body", ["DATA\r\n.\r\nNOOP\r\n"], ["line:DATA", ok(""), "line:NOOP"]],
    ["dot-unstuffing on the first line", ["DATA\r\n..first\r\n.\r\n"], [
      "line:DATA",
      ok(".first\r\n"),
    ]],
    ["dot-unstuffing on later lines", ["DATA\r\na\r\n..\r\n...b\r\n.\r\n"], [
      "line:DATA",
      ok("a\r\n.\r\n..b\r\n"),
    ]],
    // Spec §9.4: only a line beginning ".." loses a dot; a lone leading dot is kept.
    ["a single leading dot is kept", ["DATA\r\n.x\r\n.\r\n"], ["line:DATA", ok(".x\r\n")]],
    ["terminator split across chunks", ["DATA\r\nhi\r", "\n.", "\r", "\nNOOP\r\n"], [
      "line:DATA",
      ok("hi\r\n"),
      "line:NOOP",
    ]],
    ["terminator split after the dot", ["DATA\r\nhi\r\n.", "\r\nRSET\r\n"], [
      "line:DATA",
      ok("hi\r\n"),
      "line:RSET",
    ]],
    ["stuffed dot split across chunks", ["DATA\r\n.", ".x\r\n.\r\n"], ["line:DATA", ok(".x\r\n")]],
    ["body arrives in the chunk after DATA", ["DATA\r\n", "a\r\n", "b\r\n.\r\n"], [
      "line:DATA",
      ok("a\r\nb\r\n"),
    ]],
    ["bare LF with Deny", ["DATA\r\na\nb\r\n.\r\n"], [
      "line:DATA",
      ok("a\nb\r\n", {
        badLineEndings: true,
      }),
    ]],
    ["bare CR with Deny", ["DATA\r\na\rb\r\n.\r\n"], [
      "line:DATA",
      ok("a\rb\r\n", {
        badLineEndings: true,
      }),
    ]],
    ["bare LF with Allow", ["DATA\r\na\nb\r\n.\r\n"], ["line:DATA", ok("a\nb\r\n")], {
      invalidLineEndings: "Allow",
    }],
    [
      "bare LF and CR with Fix",
      ["DATA\r\na\nb\rc\r\n.\r\n"],
      ["line:DATA", ok("a\r\nb\r\nc\r\n")],
      {
        invalidLineEndings: "Fix",
      },
    ],
    ["CR split from its LF is not bare", ["DATA\r\nab\r", "\ncd\r\n.\r\n"], [
      "line:DATA",
      ok("ab\r\ncd\r\n"),
    ]],
    [
      "LF.CRLF does not end the body (no smuggling)",
      ["DATA\r\na\n.\r\nMAIL FROM:<x@y>\r\n.\r\n"],
      ["line:DATA", ok("a\n.\r\nMAIL FROM:<x@y>\r\n", { badLineEndings: true })],
      { invalidLineEndings: "Deny" },
    ],
    [
      "CRLF.LF does not end the body (no smuggling)",
      ["DATA\r\na\r\n.\nRSET\r\n.\r\n"],
      ["line:DATA", ok("a\r\n.\nRSET\r\n", { badLineEndings: true })],
    ],
    [
      "over-long DATA line is reported, reading continues",
      ["DATA\r\n" + "x".repeat(11) + "\r\nok\r\n.\r\nNOOP\r\n"],
      ["line:DATA", ok("x".repeat(11) + "\r\nok\r\n", { tooLong: true }), "line:NOOP"],
      { lineLengthHardLimit: 10 },
    ],
    [
      "over-long DATA line across chunks",
      ["DATA\r\n" + "x".repeat(6), "x".repeat(6) + "\r\n.\r\n"],
      ["line:DATA", ok("x".repeat(12) + "\r\n", { tooLong: true })],
      { lineLengthHardLimit: 10 },
    ],
    [
      "line at the limit with a stuffed dot counts the wire dot",
      ["DATA\r\n.." + "x".repeat(8) + "\r\n.\r\n"],
      ["line:DATA", ok("." + "x".repeat(8) + "\r\n")],
      { lineLengthHardLimit: 10 },
    ],
    [
      "size limit: read to the end, report too big, keep nothing",
      ["DATA\r\n0123456789\r\n", "abc\r\n.\r\nQUIT\r\n"],
      [
        "line:DATA",
        { data: "", size: 17, tooLong: false, tooBig: true, badLineEndings: false },
        "line:QUIT",
      ],
      { maxMessageSize: 16 },
    ],
    ["size exactly at the limit", ["DATA\r\n0123456789\r\n.\r\n"], [
      "line:DATA",
      ok("0123456789\r\n"),
    ], {
      maxMessageSize: 12,
    }],
    [
      "invalid UTF-8 is fine in DATA",
      [new Uint8Array([...b("DATA\r\n"), 0xff, 0xfe, 0x0d, 0x0a, ...b(".\r\n")])],
      ["line:DATA", {
        data: "\ufffd\ufffd\r\n",
        size: 4,
        tooLong: false,
        tooBig: false,
        badLineEndings: false,
      }],
    ],
    ["two transactions pipelined", ["DATA\r\na\r\n.\r\nDATA\r\n..b\r\n.\r\nQUIT\r\n"], [
      "line:DATA",
      ok("a\r\n"),
      "line:DATA",
      ok(".b\r\n"),
      "line:QUIT",
    ]],
  ];
  for (const [name, chunks, want, opts] of table) assert.deepEqual(run(chunks, opts), want, name);
});

Deno.test("LineReader data event names the first problem", () => {
  const r = new LineReader({ lineLengthHardLimit: 4, maxMessageSize: 8 });
  r.startData();
  r.push(b("abcdefgh\nxyz\r\n.\r\n"));
  const ev = r.next() as DataEvent;
  assert.equal(ev.kind, "data");
  assert.deepEqual([ev.tooLong, ev.tooBig, ev.badLineEndings, ev.problem], [
    true,
    true,
    true,
    "too_long",
  ]);
  r.startData();
  r.push(b("a\nb\r\n.\r\n"));
  assert.equal((r.next() as DataEvent).problem, "bad_line_endings");
  r.startData();
  r.push(b("a\r\n.\r\n"));
  assert.equal((r.next() as DataEvent).problem, null);
});

Deno.test("LineReader takeBuffered() hands over and clears unconsumed bytes (STARTTLS)", () => {
  const r = new LineReader();
  r.push(b("STARTTLS\r\nEHLO "));
  r.push(b("injected\r\n"));
  assert.deepEqual(r.next(), { kind: "line", line: "STARTTLS" });
  assert.equal(r.bufferedLength, 15);
  assert.equal(dec.decode(r.takeBuffered()), "EHLO injected\r\n");
  assert.equal(r.bufferedLength, 0);
  assert.equal(r.next(), null);
  r.push(b("EHLO real\r\n"));
  assert.deepEqual(r.next(), { kind: "line", line: "EHLO real" });
  assert.equal(r.takeBuffered().length, 0);
});

Deno.test("LineReader startData() twice throws", () => {
  const r = new LineReader();
  r.startData();
  assert.equal(r.mode, "data");
  assert.throws(() => r.startData(), /already in data mode/);
});

Deno.test("LineReader body is not copied when it arrives in one chunk", () => {
  const r = new LineReader();
  const chunk = b("hello\r\n.\r\n");
  r.startData();
  r.push(chunk);
  const ev = r.next() as DataEvent;
  assert.equal(ev.body.buffer, chunk.buffer);
  assert.equal(dec.decode(ev.body), "hello\r\n");
});

// ---- split-anywhere equivalence against a byte-at-a-time reference --------

interface Ref {
  body: string;
  size: number;
  tooLong: boolean;
  tooBig: boolean;
  badLineEndings: boolean;
  rest: string;
}

/** Obvious byte-at-a-time reference of the data-mode rules (on latin1 strings). */
function reference(wire: string, limit: number, max: number, mode: InvalidLineEndings): Ref | null {
  let out = "";
  let i = 0, lineLen = 0, atStart = true, prevCrlf = true, tooLong = false, bad = false;
  const endLine = (crlf: boolean) => {
    if (lineLen > limit) tooLong = true;
    lineLen = 0;
    atStart = true;
    prevCrlf = crlf;
  };
  const bare = (ch: string) => {
    if (mode === "Deny") bad = true;
    out += mode === "Fix" ? "\r\n" : ch;
  };
  while (i < wire.length) {
    if (atStart) {
      if (prevCrlf && wire.startsWith(".\r\n", i)) {
        const size = out.length;
        const tooBig = size > max;
        return {
          body: tooBig ? "" : out,
          size,
          tooLong,
          tooBig,
          badLineEndings: bad,
          rest: wire.slice(i + 3),
        };
      }
      if (wire.startsWith("..", i)) {
        i++;
        lineLen = 1;
      }
      atStart = false;
    }
    const c = wire[i];
    if (c === "\r" && wire[i + 1] === "\n") {
      out += "\r\n";
      i += 2;
      endLine(true);
    } else if (c === "\n") {
      bare("\n");
      i++;
      endLine(false);
    } else if (c === "\r") {
      bare("\r");
      lineLen++;
      i++;
    } else {
      out += c;
      lineLen++;
      i++;
    }
  }
  return null;
}

function latin1(s: string): Uint8Array {
  const u = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
  return u;
}
function fromLatin1(u: Uint8Array): string {
  let s = "";
  for (const x of u) s += String.fromCharCode(x);
  return s;
}

/** Run the reader in data mode over `chunks`; returns the event and the leftover bytes. */
function readData(chunks: Uint8Array[], opts: LineReaderOptions): Ref | null {
  const r = new LineReader(opts);
  r.startData();
  let ev: ReaderEvent | null = null;
  for (const c of chunks) {
    r.push(c);
    if (ev === null) ev = r.next();
  }
  if (ev === null) return null;
  assert.equal(ev.kind, "data");
  const d = ev as DataEvent;
  return {
    body: fromLatin1(d.body),
    size: d.size,
    tooLong: d.tooLong,
    tooBig: d.tooBig,
    badLineEndings: d.badLineEndings,
    rest: fromLatin1(r.takeBuffered()),
  };
}

/** Small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TOKENS = ["a", "bc", ".", "..", "\r", "\n", "\r\n", "\r\n.", ".\r", "xxxxxxx", "\xff"];

Deno.test("LineReader data mode matches the reference for every split point", () => {
  const rand = rng(42);
  let checked = 0;
  for (let n = 0; n < 400; n++) {
    let wire = "";
    const count = Math.floor(rand() * 12);
    for (let k = 0; k < count; k++) wire += TOKENS[Math.floor(rand() * TOKENS.length)];
    wire += "\r\n.\r\nNOOP\r\n";
    if (rand() < 0.2) wire = wire.slice(2); // sometimes no CRLF before the dot
    for (const mode of ["Deny", "Allow", "Fix"] as const) {
      const opts = { lineLengthHardLimit: 6, maxMessageSize: 20, invalidLineEndings: mode };
      const want = reference(wire, 6, 20, mode);
      const bytes = latin1(wire);
      // One chunk, every 2-way split, and 1-byte chunks.
      assert.deepEqual(readData([bytes], opts), want, JSON.stringify({ wire, mode }));
      for (let s = 0; s <= bytes.length; s++) {
        const got = readData([bytes.slice(0, s), bytes.slice(s)], opts);
        assert.deepEqual(got, want, JSON.stringify({ wire, mode, split: s }));
        checked++;
      }
      const ones = Array.from(bytes, (x) => new Uint8Array([x]));
      assert.deepEqual(readData(ones, opts), want, JSON.stringify({ wire, mode, split: "bytes" }));
    }
  }
  assert.ok(checked > 10000);
});

Deno.test("LineReader handles a large body in big chunks", () => {
  const line = "The quick brown fox jumps over the lazy dog. 0123456789\r\n";
  const body = line.repeat(20000); // ~1.1 MB
  const wire = b(body + ".\r\nQUIT\r\n");
  const r = new LineReader({ maxMessageSize: 4 * 1024 * 1024 });
  r.startData();
  const events: ReaderEvent[] = [];
  for (let o = 0; o < wire.length; o += 65536) {
    r.push(wire.subarray(o, o + 65536));
    for (let ev = r.next(); ev !== null; ev = r.next()) events.push(ev);
  }
  assert.equal(events.length, 2);
  const d = events[0] as DataEvent;
  assert.equal(d.problem, null);
  assert.equal(d.size, body.length);
  assert.equal(dec.decode(d.body), body);
  assert.deepEqual(events[1], { kind: "line", line: "QUIT" });
});
