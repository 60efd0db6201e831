/**
 * Header operations on a stored message: the raw RFC 5322 bytes (CRLF).
 *
 * On the mail's path these back the `msg:*header*` policy methods (reception
 * events, spool-in, delivery-time rewrites) and the trace headers the SMTP
 * server prepends. Every function works on the header block only — the bytes
 * before the first blank line (RFC 5322 §2.1) — and splices the result into a
 * new buffer; the body is copied as bytes, never decoded or re-encoded.
 * Functions that change nothing return the input array itself.
 *
 * Values read are unfolded (RFC 5322 §2.2.3: CRLF before WSP removed), trimmed
 * and RFC 2047 encoded-words decoded (B and Q, any charset TextDecoder knows:
 * UTF-8, ISO-8859-1, US-ASCII, ...). Values written are folded at 78 columns
 * (RFC 5322 §2.1.1) and, when asked, RFC 2047-encoded (UTF-8).
 *
 * Never does I/O; never touches meta (callers turn imported headers into meta).
 *
 * @module
 */

const CR = 13;
const LF = 10;
const SP = 32;
const HT = 9;
const COLON = 58;

/** Byte offsets of one header field inside a message. */
export interface HeaderSpan {
  /** First byte of the field name. */
  start: number;
  /** End of the field name (exclusive), trailing blanks before the colon excluded. */
  nameEnd: number;
  /** First byte after the colon. */
  valueStart: number;
  /** End of the field (exclusive), after its last line's line break. */
  end: number;
}

/** One header as read: name as written, value unfolded and decoded. */
export interface HeaderField {
  name: string;
  value: string;
}

const utf8Decoder = new TextDecoder();
const utf8Encoder = new TextEncoder();

/**
 * Offset of the blank line that ends the header block, or -1 when the message
 * has none. A bare LF line counts as blank too (lenient on stored input).
 *
 * @example
 * ```ts
 * findHeaderEnd(new TextEncoder().encode("A: b\r\n\r\nbody")); // 6
 * ```
 */
export function findHeaderEnd(data: Uint8Array): number {
  const len = data.length;
  let pos = 0;
  while (pos < len) {
    const c = data[pos];
    if (c === LF || (c === CR && data[pos + 1] === LF)) return pos;
    const lf = data.indexOf(LF, pos);
    if (lf < 0) return -1;
    pos = lf + 1;
  }
  return -1;
}

/**
 * Offset of the first body byte: just after the blank line, or `data.length`
 * when there is no blank line (the message is all headers).
 */
export function findBodyStart(data: Uint8Array): number {
  const end = findHeaderEnd(data);
  if (end < 0) return data.length;
  return data[end] === CR ? end + 2 : end + 1;
}

/**
 * Visit each header field in order; return `true` from `visit` to stop.
 * Lines in the header block that are neither a field nor a continuation
 * (no colon) are skipped. Allocation-free apart from the reused span.
 */
function eachHeader(data: Uint8Array, visit: (span: HeaderSpan) => boolean | void): void {
  const headerEnd = findHeaderEnd(data);
  const limit = headerEnd < 0 ? data.length : headerEnd;
  const span: HeaderSpan = { start: 0, nameEnd: 0, valueStart: 0, end: 0 };
  let open = false;
  let pos = 0;
  while (pos < limit) {
    const lf = data.indexOf(LF, pos);
    const lineEnd = lf < 0 || lf >= limit ? limit : lf + 1;
    const c = data[pos];
    if (open && (c === SP || c === HT)) {
      span.end = lineEnd;
    } else {
      if (open && visit(span) === true) return;
      open = false;
      let colon = pos;
      while (colon < lineEnd && data[colon] !== COLON) colon++;
      if (colon < lineEnd) {
        let nameEnd = colon;
        while (nameEnd > pos && (data[nameEnd - 1] === SP || data[nameEnd - 1] === HT)) nameEnd--;
        span.start = pos;
        span.nameEnd = nameEnd;
        span.valueStart = colon + 1;
        span.end = lineEnd;
        open = true;
      }
    }
    pos = lineEnd;
  }
  if (open) visit(span);
}

/**
 * Byte spans of every header field, in order.
 *
 * @example
 * ```ts
 * const spans = scanHeaders(new TextEncoder().encode("A: 1\r\nB: 2\r\n\r\n"));
 * spans.length; // 2
 * ```
 */
export function scanHeaders(data: Uint8Array): HeaderSpan[] {
  const out: HeaderSpan[] = [];
  eachHeader(data, (s) => {
    out.push({ ...s });
  });
  return out;
}

/** Compare a field name in `data` against an already lower-cased ASCII name. */
function nameIs(data: Uint8Array, span: HeaderSpan, lower: string): boolean {
  const n = span.nameEnd - span.start;
  if (n !== lower.length) return false;
  for (let i = 0; i < n; i++) {
    let b = data[span.start + i];
    if (b >= 65 && b <= 90) b += 32;
    if (b !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** True when the field name starts with `X-` (any case). */
function isXHeader(data: Uint8Array, span: HeaderSpan): boolean {
  return span.nameEnd - span.start > 2 && (data[span.start] | 0x20) === 0x78 &&
    data[span.start + 1] === 0x2d;
}

function nameOf(data: Uint8Array, span: HeaderSpan): string {
  return String.fromCharCode(...data.subarray(span.start, span.nameEnd));
}

/** The unfolded, trimmed, decoded value of a field. */
function valueOf(data: Uint8Array, span: HeaderSpan): string {
  let raw = utf8Decoder.decode(data.subarray(span.valueStart, span.end));
  if (raw.indexOf("\n") !== raw.lastIndexOf("\n")) raw = raw.replace(/\r?\n(?=[ \t])/g, "");
  return decodeEncodedWords(raw.trim());
}

// ---- RFC 2047 decoding ----

const decoders = new Map<string, TextDecoder | null>();

function decoderFor(charset: string): TextDecoder | null {
  let d = decoders.get(charset);
  if (d === undefined) {
    try {
      d = new TextDecoder(charset);
    } catch {
      d = null;
    }
    decoders.set(charset, d);
  }
  return d;
}

function wordBytes(encoding: string, text: string): number[] | null {
  const out: number[] = [];
  if (encoding === "b" || encoding === "B") {
    let bin: string;
    try {
      bin = atob(text);
    } catch {
      return null;
    }
    for (let i = 0; i < bin.length; i++) out.push(bin.charCodeAt(i));
    return out;
  }
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5f) out.push(SP);
    else if (c === 0x3d) {
      const pair = text.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(pair)) return null;
      out.push(parseInt(pair, 16));
      i += 2;
    } else out.push(c & 0xff);
  }
  return out;
}

/**
 * Decode RFC 2047 encoded-words in a header value. Whitespace between two
 * adjacent encoded-words is dropped (§6.2); consecutive words in the same
 * charset are decoded together so a character split across words survives.
 * Words with an unknown charset or bad encoding are left as written.
 *
 * @example
 * ```ts
 * decodeEncodedWords("=?UTF-8?Q?caf=C3=A9?= au lait"); // "café au lait"
 * ```
 */
export function decodeEncodedWords(text: string): string {
  if (!text.includes("=?")) return text;
  const re = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;
  let out = "";
  let last = 0;
  let pendingCharset = "";
  let pending: number[] = [];
  const flush = () => {
    if (pendingCharset !== "") {
      out += decoderFor(pendingCharset)!.decode(new Uint8Array(pending));
      pendingCharset = "";
      pending = [];
    }
  };
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const between = text.slice(last, m.index);
    const charset = m[1].split("*")[0].toLowerCase();
    const bytes = decoderFor(charset) ? wordBytes(m[2], m[3]) : null;
    if (bytes === null) {
      flush();
      out += between + m[0];
    } else {
      const adjacent = pendingCharset !== "" && /^[ \t\r\n]*$/.test(between);
      if (adjacent && charset === pendingCharset) {
        for (const b of bytes) pending.push(b);
      } else {
        flush();
        if (!adjacent) out += between;
        pendingCharset = charset;
        pending = bytes;
      }
    }
    last = re.lastIndex;
  }
  flush();
  return out + text.slice(last);
}

// ---- RFC 2047 encoding and folding ----

const MAX_LINE = 78;
const MAX_ENCODED_LINE = 76;

function needsEncoding(value: string): boolean {
  return /[^\x20-\x7e\t]/.test(value);
}

/** Q-encode one code point's UTF-8 bytes (RFC 2047 §4.2, `phrase`-safe set). */
function qEncode(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) {
    if (b === SP) s += "_";
    else if (
      (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) ||
      b === 0x21 || b === 0x2a || b === 0x2b || b === 0x2d || b === 0x2f
    ) s += String.fromCharCode(b);
    else s += "=" + (b < 16 ? "0" : "") + b.toString(16).toUpperCase();
  }
  return s;
}

function bEncode(bytes: number[]): string {
  return btoa(String.fromCharCode(...bytes));
}

/**
 * RFC 2047-encode `value` as UTF-8 encoded-words separated by folding
 * (`CRLF SP`); the first word leaves room for `Name: ` on its line.
 * Q encoding when most bytes are printable ASCII, B otherwise.
 */
export function encodeHeaderValue(name: string, value: string): string {
  const all = utf8Encoder.encode(value);
  let escaped = 0;
  for (const b of all) if (b < 0x20 || b > 0x7e) escaped++;
  const useB = escaped * 3 > all.length;
  const prefix = useB ? "=?UTF-8?B?" : "=?UTF-8?Q?";
  const words: string[] = [];
  let budget = Math.max(MAX_ENCODED_LINE - name.length - 2, 24) - prefix.length - 2;
  let cur = "";
  let curBytes: number[] = [];
  const push = () => {
    words.push(prefix + (useB ? bEncode(curBytes) : cur) + "?=");
    cur = "";
    curBytes = [];
    budget = MAX_ENCODED_LINE - 1 - prefix.length - 2;
  };
  for (const ch of value) {
    const bytes = utf8Encoder.encode(ch);
    if (useB) {
      const len = Math.ceil((curBytes.length + bytes.length) / 3) * 4;
      if (len > budget && curBytes.length > 0) push();
      for (const b of bytes) curBytes.push(b);
    } else {
      const enc = qEncode(bytes);
      if (cur.length + enc.length > budget && cur.length > 0) push();
      cur += enc;
    }
  }
  if (cur.length > 0 || curBytes.length > 0 || words.length === 0) push();
  return words.join("\r\n ");
}

/**
 * Fold `Name: value` at whitespace so lines stay within 78 columns where
 * possible (a run without whitespace longer than that stays whole).
 */
function foldLine(name: string, value: string): string {
  const line = `${name}: ${value}`;
  if (line.length <= MAX_LINE) return line;
  let out = "";
  let lineStart = 0;
  let lastWs = -1;
  const minBreak = name.length + 2;
  for (let i = minBreak; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if ((c === SP || c === HT) && i > lineStart) lastWs = i;
    if (i - lineStart >= MAX_LINE && lastWs > lineStart) {
      out += line.slice(lineStart, lastWs) + "\r\n";
      lineStart = lastWs;
      lastWs = -1;
    }
  }
  return out + line.slice(lineStart);
}

/** Build the bytes of one header field (with its CRLF), validating inputs. */
export function formatHeader(name: string, value: string, encode = false): Uint8Array {
  if (!/^[\x21-\x39\x3b-\x7e]+$/.test(name)) {
    throw new TypeError(`Cannot add header "${name}": invalid field name`);
  }
  let line: string;
  if (/[\r\n]/.test(value)) {
    // Accept a value that is already folded (CRLF + WSP); reject anything
    // else, which would inject a header line.
    if (/\r(?!\n)|(?<!\r)\n|\r\n(?![ \t])/.test(value)) {
      throw new TypeError(`Cannot add header "${name}": value contains a bare line break`);
    }
    line = `${name}: ${value}`;
  } else if (encode && needsEncoding(value)) {
    line = `${name}: ${encodeHeaderValue(name, value)}`;
  } else {
    line = foldLine(name, value);
  }
  return utf8Encoder.encode(line + "\r\n");
}

function splice(data: Uint8Array, at: number, insert: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length + insert.length);
  out.set(data.subarray(0, at), 0);
  out.set(insert, at);
  out.set(data.subarray(at), at + insert.length);
  return out;
}

/** Copy `data` without the given ascending, non-overlapping [start, end) ranges. */
function cut(data: Uint8Array, ranges: number[]): Uint8Array {
  if (ranges.length === 0) return data;
  let removed = 0;
  for (let i = 0; i < ranges.length; i += 2) removed += ranges[i + 1] - ranges[i];
  const out = new Uint8Array(data.length - removed);
  let from = 0;
  let to = 0;
  for (let i = 0; i < ranges.length; i += 2) {
    out.set(data.subarray(from, ranges[i]), to);
    to += ranges[i] - from;
    from = ranges[i + 1];
  }
  out.set(data.subarray(from), to);
  return out;
}

/**
 * The decoded value of the first header named `name` (case-insensitive), or
 * `undefined` when there is none.
 *
 * @example
 * ```ts
 * const msg = new TextEncoder().encode("Subject: =?utf-8?B?w6k=?=\r\n\r\n");
 * getFirstNamedHeaderValue(msg, "subject"); // "é"
 * ```
 */
export function getFirstNamedHeaderValue(data: Uint8Array, name: string): string | undefined {
  const lower = name.toLowerCase();
  let found: string | undefined;
  eachHeader(data, (s) => {
    if (!nameIs(data, s, lower)) return false;
    found = valueOf(data, s);
    return true;
  });
  return found;
}

/** Decoded values of every header named `name` (case-insensitive), in order. */
export function getAllNamedHeaderValues(data: Uint8Array, name: string): string[] {
  const lower = name.toLowerCase();
  const out: string[] = [];
  eachHeader(data, (s) => {
    if (nameIs(data, s, lower)) out.push(valueOf(data, s));
  });
  return out;
}

/** Every header as `{name, value}` (value unfolded and decoded), in order. */
export function getAllHeaders(data: Uint8Array): HeaderField[] {
  const out: HeaderField[] = [];
  eachHeader(data, (s) => {
    out.push({ name: nameOf(data, s), value: valueOf(data, s) });
  });
  return out;
}

/**
 * A copy of `data` with `Name: value` added as the first header.
 *
 * @param encode RFC 2047-encode the value when it is not plain ASCII.
 * @example
 * ```ts
 * const out = prependHeader(new TextEncoder().encode("A: 1\r\n\r\n"), "Received", "from x");
 * ```
 */
export function prependHeader(
  data: Uint8Array,
  name: string,
  value: string,
  encode = false,
): Uint8Array {
  return splice(data, 0, formatHeader(name, value, encode));
}

/**
 * A copy of `data` with `Name: value` added as the last header (just before
 * the blank line).
 *
 * @throws {Error} when the message has no blank line ending its headers.
 */
export function appendHeader(
  data: Uint8Array,
  name: string,
  value: string,
  encode = false,
): Uint8Array {
  const end = findHeaderEnd(data);
  if (end < 0) {
    throw new Error(`Cannot append header "${name}": message has no blank line after its headers`);
  }
  return splice(data, end, formatHeader(name, value, encode));
}

function removeWhere(data: Uint8Array, match: (span: HeaderSpan) => boolean): Uint8Array {
  const ranges: number[] = [];
  eachHeader(data, (s) => {
    if (!match(s)) return;
    const n = ranges.length;
    if (n > 0 && ranges[n - 1] === s.start) ranges[n - 1] = s.end;
    else ranges.push(s.start, s.end);
  });
  return cut(data, ranges);
}

/**
 * A copy of `data` without the header fields at the given positions (0 = the
 * first field, in the order of {@linkcode getAllHeaders}); `data` itself if none.
 */
export function removeHeaderFields(data: Uint8Array, positions: ReadonlySet<number>): Uint8Array {
  if (positions.size === 0) return data;
  let i = 0;
  return removeWhere(data, () => positions.has(i++));
}

/** A copy of `data` without any header named `name` (case-insensitive); `data` itself if none. */
export function removeAllNamedHeaders(data: Uint8Array, name: string): Uint8Array {
  const lower = name.toLowerCase();
  return removeWhere(data, (s) => nameIs(data, s, lower));
}

/**
 * A copy of `data` without `X-*` headers (no `names`, or an empty list), or
 * without exactly the headers named in `names` (any prefix, case-insensitive).
 */
export function removeXHeaders(data: Uint8Array, names?: readonly string[]): Uint8Array {
  if (!names || names.length === 0) return removeWhere(data, (s) => isXHeader(data, s));
  const lower = names.map((n) => n.toLowerCase());
  return removeWhere(data, (s) => lower.some((n) => nameIs(data, s, n)));
}

/**
 * Meta entries for `X-*` headers (no `names`), or for the headers named in
 * `names`: key = lower-cased name with `-` → `_` (`X-Campaign-ID` →
 * `x_campaign_id`), value = decoded header value. In header order, so when a
 * name repeats, setting the entries in turn leaves the last value.
 *
 * @example
 * ```ts
 * importXHeaders(new TextEncoder().encode("X-Tenant: shop\r\n\r\n")); // [["x_tenant", "shop"]]
 * ```
 */
export function importXHeaders(data: Uint8Array, names?: readonly string[]): [string, string][] {
  const lower = names && names.length > 0 ? names.map((n) => n.toLowerCase()) : null;
  const out: [string, string][] = [];
  eachHeader(data, (s) => {
    if (lower ? lower.some((n) => nameIs(data, s, n)) : isXHeader(data, s)) {
      out.push([nameOf(data, s).toLowerCase().replaceAll("-", "_"), valueOf(data, s)]);
    }
  });
  return out;
}
