/**
 * Message conformance: the checks and fixes behind
 * `msg:check_fix_conformance(checks, fixes)` (lua-api.md §7.1).
 *
 * Place on the mail's path: called by policy on a received message (usually
 * in `smtp_server_message_received`) to refuse or repair malformed mail
 * before it is spooled. Works on the raw bytes (each byte one latin1 char),
 * so 8-bit content survives untouched. Pure: bytes in, bytes and issue
 * names out; never does I/O.
 *
 * Fixes: line endings → CRLF; spaces before a header colon removed;
 * `Date:`, `Message-ID: <id@host>`, `MIME-Version: 1.0` added; an over-long
 * or 8-bit body of a single-part message re-encoded as quoted-printable.
 * Not fixable (stay reported when checked): a header line without a colon,
 * over-long header lines, and long/8-bit content inside multipart bodies.
 *
 * @module
 */

import { quotedPrintable } from "../util/quoted_printable.ts";

/** The issue names, in upstream's order. */
export const CONFORMANCE_FLAGS = [
  "MISSING_COLON_VALUE",
  "NON_CANONICAL_LINE_ENDINGS",
  "NAME_ENDS_WITH_SPACE",
  "LINE_TOO_LONG",
  "NEEDS_TRANSFER_ENCODING",
  "MISSING_DATE_HEADER",
  "MISSING_MESSAGE_ID_HEADER",
  "MISSING_MIME_VERSION",
] as const;

/** One conformance issue. */
export type ConformanceFlag = typeof CONFORMANCE_FLAGS[number];

/** Longest line allowed by RFC 5322 §2.1.1, excluding CRLF. */
const MAX_LINE = 998;

/**
 * Parse `'A|B'` (spaces allowed, empty string = none).
 *
 * @throws {TypeError} on an unknown name
 * @example
 * ```ts
 * parseConformanceFlags("LINE_TOO_LONG|MISSING_DATE_HEADER"); // Set { "LINE_TOO_LONG", "MISSING_DATE_HEADER" }
 * ```
 */
export function parseConformanceFlags(text: string): Set<ConformanceFlag> {
  const out = new Set<ConformanceFlag>();
  for (const raw of text.split("|")) {
    const name = raw.trim();
    if (name === "") continue;
    if (!(CONFORMANCE_FLAGS as readonly string[]).includes(name)) {
      throw new TypeError(
        `Cannot parse conformance flag "${name}": expected one of ${CONFORMANCE_FLAGS.join(", ")}`,
      );
    }
    out.add(name as ConformanceFlag);
  }
  return out;
}

function toLatin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) {
    s += String.fromCharCode(...b.subarray(i, i + 8192));
  }
  return s;
}

function fromLatin1(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

interface Parsed {
  /** Header lines, unfolded only by line (continuations kept as own lines), no endings. */
  headerLines: string[];
  body: string;
  /** Whether the header block ended with an empty line. */
  hasBody: boolean;
}

/** Split on any line ending; the header block ends at the first empty line. */
function parse(text: string): Parsed {
  const headerLines: string[] = [];
  let pos = 0;
  while (pos < text.length) {
    const m = /\r\n|\r|\n/g;
    m.lastIndex = pos;
    const hit = m.exec(text);
    const end = hit ? hit.index : text.length;
    const next = hit ? end + hit[0].length : text.length;
    const line = text.slice(pos, end);
    pos = next;
    if (line === "") return { headerLines, body: text.slice(pos), hasBody: true };
    headerLines.push(line);
  }
  return { headerLines, body: "", hasBody: false };
}

function headerName(line: string): string | null {
  const i = line.indexOf(":");
  return i < 0 ? null : line.slice(0, i);
}

function findHeader(lines: readonly string[], name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const l of lines) {
    const n = headerName(l);
    if (n !== null && n.trimEnd().toLowerCase() === lower) {
      return l.slice(l.indexOf(":") + 1).trim();
    }
  }
  return undefined;
}

/**
 * The issues present in `data`.
 *
 * @example
 * ```ts
 * checkConformance(new TextEncoder().encode("Subject: x\n\nhi\n"));
 * // Set { "NON_CANONICAL_LINE_ENDINGS", "MISSING_DATE_HEADER", "MISSING_MESSAGE_ID_HEADER", "MISSING_MIME_VERSION" }
 * ```
 */
export function checkConformance(data: Uint8Array): Set<ConformanceFlag> {
  return checkText(toLatin1(data));
}

function checkText(text: string): Set<ConformanceFlag> {
  const issues = new Set<ConformanceFlag>();
  if (/\r(?!\n)|(?<!\r)\n/.test(text)) issues.add("NON_CANONICAL_LINE_ENDINGS");
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line.length > MAX_LINE) {
      issues.add("LINE_TOO_LONG");
      break;
    }
  }
  const p = parse(text);
  for (const line of p.headerLines) {
    if (line[0] === " " || line[0] === "\t") continue; // folded continuation
    const name = headerName(line);
    if (name === null) issues.add("MISSING_COLON_VALUE");
    else if (/[ \t]$/.test(name)) issues.add("NAME_ENDS_WITH_SPACE");
  }
  if (findHeader(p.headerLines, "Date") === undefined) issues.add("MISSING_DATE_HEADER");
  if (findHeader(p.headerLines, "Message-ID") === undefined) {
    issues.add("MISSING_MESSAGE_ID_HEADER");
  }
  if (findHeader(p.headerLines, "MIME-Version") === undefined) issues.add("MISSING_MIME_VERSION");
  if (/[\x80-\xff]/.test(p.body)) {
    const cte = (findHeader(p.headerLines, "Content-Transfer-Encoding") ?? "7bit").toLowerCase();
    if (cte === "7bit" || cte === "") issues.add("NEEDS_TRANSFER_ENCODING");
  }
  return issues;
}

/** What {@linkcode checkFixConformance} needs to synthesise headers. */
export interface ConformanceContext {
  /** Used in a generated `Message-ID: <id@hostname>`. */
  id: string;
  hostname: string;
  /** Time for a generated `Date:`. @default Date.now() */
  nowMs?: number;
}

/**
 * Check `data` for `checks` after applying `fixes`: returns the repaired
 * bytes when a fix changed anything, and an error text naming the issues in
 * `checks` that remain.
 *
 * @example
 * ```ts
 * const r = checkFixConformance(bytes, parseConformanceFlags("MISSING_COLON_VALUE"),
 *   parseConformanceFlags("MISSING_DATE_HEADER"), { id, hostname: "mx.test" });
 * if (r.error) reject(r.error); // "Message has conformance issues: MISSING_COLON_VALUE"
 * ```
 */
export function checkFixConformance(
  data: Uint8Array,
  checks: ReadonlySet<ConformanceFlag>,
  fixes: ReadonlySet<ConformanceFlag>,
  ctx: ConformanceContext,
): { data?: Uint8Array; error?: string } {
  const original = toLatin1(data);
  let issues = checkText(original);
  let text = original;
  if ([...issues].some((i) => fixes.has(i))) {
    text = fixText(text, issues, fixes, ctx);
    issues = checkText(text);
  }
  const remaining = CONFORMANCE_FLAGS.filter((f) => checks.has(f) && issues.has(f));
  const result: { data?: Uint8Array; error?: string } = {};
  if (text !== original) result.data = fromLatin1(text);
  if (remaining.length > 0) result.error = `Message has conformance issues: ${remaining.join("|")}`;
  return result;
}

function fixText(
  text: string,
  issues: ReadonlySet<ConformanceFlag>,
  fixes: ReadonlySet<ConformanceFlag>,
  ctx: ConformanceContext,
): string {
  const want = (f: ConformanceFlag) => issues.has(f) && fixes.has(f);
  if (want("NON_CANONICAL_LINE_ENDINGS")) text = text.replace(/\r\n|\r|\n/g, "\r\n");
  const p = parse(text);
  let lines = p.headerLines;
  let body = p.body;
  if (want("NAME_ENDS_WITH_SPACE")) {
    lines = lines.map((l) => {
      if (l[0] === " " || l[0] === "\t") return l;
      const i = l.indexOf(":");
      return i < 0 ? l : l.slice(0, i).trimEnd() + l.slice(i);
    });
  }
  const recode = (want("LINE_TOO_LONG") || want("NEEDS_TRANSFER_ENCODING")) &&
    !/^\s*multipart\//i.test(findHeader(lines, "Content-Type") ?? "");
  let addMime = want("MISSING_MIME_VERSION");
  if (recode) {
    lines = dropHeader(lines, "Content-Transfer-Encoding");
    lines.push("Content-Transfer-Encoding: quoted-printable");
    body = quotedPrintable(Uint8Array.from(body, (c) => c.charCodeAt(0))); // body is latin1 bytes
    if (findHeader(lines, "MIME-Version") === undefined) addMime = true;
  }
  if (want("MISSING_DATE_HEADER")) {
    lines.push(`Date: ${new Date(ctx.nowMs ?? Date.now()).toUTCString().replace("GMT", "+0000")}`);
  }
  if (want("MISSING_MESSAGE_ID_HEADER")) lines.push(`Message-ID: <${ctx.id}@${ctx.hostname}>`);
  if (addMime) lines.push("MIME-Version: 1.0");
  return lines.join("\r\n") + "\r\n" + (p.hasBody || body !== "" ? "\r\n" + body : "");
}

/** Remove header `name` with its continuation lines. */
function dropHeader(lines: readonly string[], name: string): string[] {
  const out: string[] = [];
  let skipping = false;
  for (const l of lines) {
    if (l[0] === " " || l[0] === "\t") {
      if (!skipping) out.push(l);
      continue;
    }
    const n = headerName(l);
    skipping = n !== null && n.trimEnd().toLowerCase() === name.toLowerCase();
    if (!skipping) out.push(l);
  }
  return out;
}
