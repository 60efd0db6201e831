/**
 * A small MIME reader for the raw form of inject `content` (http-api.md
 * §3.2): splits an expanded RFC 5322 text (CRLF line ends) into its header
 * fields and body, parses `Content-Type` parameters, walks multipart
 * bodies by their boundary (RFC 2046 §5.1.1: the CRLF before a delimiter
 * belongs to it; preamble and epilogue are ignored) and undoes
 * `base64` / `quoted-printable` transfer encodings (RFC 2045 §6.7, §6.8).
 *
 * Place on the path: `raw_content.ts` uses it to rebuild each recipient's
 * message with every leaf re-encoded. Pure functions over strings; a text
 * that is not a message throws a `SyntaxError` (that recipient fails).
 *
 * @module
 */

/** A parsed `Content-Type` (lower-cased type and subtype, parameter names lower-cased). */
export interface ContentType {
  type: string;
  subtype: string;
  params: Map<string, string>;
  /** Each parameter as written (`name="value"`), with its lower-cased name (`*` kept). */
  rawParams: [string, string][];
}

/** One entity: header fields in order (raw values, folding kept) and the body text. */
export interface MimeEntity {
  /** `[name, raw value after the colon]`, in order. */
  fields: [string, string][];
  /** Everything after the blank line (CRLF line ends). */
  body: string;
}

const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

/**
 * Split a text into header fields and body. A text without a blank line is
 * all header.
 *
 * @throws {SyntaxError} on a line that is neither a field nor a continuation
 * @example
 * ```ts
 * splitEntity("Subject: hi\r\n\r\nbody\r\n"); // { fields: [["Subject", " hi"]], body: "body\r\n" }
 * ```
 */
export function splitEntity(text: string): MimeEntity {
  let head: string;
  let body: string;
  if (text.startsWith("\r\n")) {
    head = "";
    body = text.slice(2);
  } else {
    const end = text.indexOf("\r\n\r\n");
    if (end < 0) {
      head = text.endsWith("\r\n") ? text.slice(0, -2) : text;
      body = "";
    } else {
      head = text.slice(0, end);
      body = text.slice(end + 4);
    }
  }
  const fields: [string, string][] = [];
  for (const line of head === "" ? [] : head.split("\r\n")) {
    if ((line[0] === " " || line[0] === "\t") && fields.length > 0) {
      fields[fields.length - 1][1] += "\r\n" + line;
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0 || !FIELD_NAME.test(line.slice(0, colon))) {
      throw new SyntaxError(
        `Cannot parse message: invalid header line ${JSON.stringify(line.slice(0, 60))}`,
      );
    }
    fields.push([line.slice(0, colon), line.slice(colon + 1)]);
  }
  return { fields, body };
}

/** The first field named `name` (case-insensitive), unfolded and trimmed. */
export function fieldValue(fields: readonly [string, string][], name: string): string | undefined {
  const lower = name.toLowerCase();
  const f = fields.find(([n]) => n.toLowerCase() === lower);
  return f === undefined ? undefined : f[1].replace(/\r\n(?=[ \t])/g, "").trim();
}

/**
 * Parse a `Content-Type` value: `type/subtype` and `; name=value` pairs
 * (values unquoted; RFC 2231 `name*=charset''text` decoded when UTF-8 or
 * ASCII). Returns undefined when there is no `type/subtype`.
 *
 * @example
 * ```ts
 * parseContentType('multipart/mixed; boundary="b1"')?.params.get("boundary"); // "b1"
 * ```
 */
export function parseContentType(value: string): ContentType | undefined {
  const m = /^\s*([A-Za-z0-9!#$&^_.+-]+)\/([A-Za-z0-9!#$&^_.+-]+)\s*/.exec(value);
  if (!m) return undefined;
  const params = new Map<string, string>();
  const rawParams: [string, string][] = [];
  let rest = value.slice(m[0].length);
  for (;;) {
    const p = /^;\s*([^=\s;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)\s*/.exec(rest);
    if (!p) {
      const skip = /^;[^;]*/.exec(rest);
      if (!skip) break;
      rest = rest.slice(skip[0].length);
      continue;
    }
    rest = rest.slice(p[0].length);
    let name = p[1].toLowerCase();
    rawParams.push([name, `${p[1]}=${p[2]}`]);
    let v = p[2].startsWith('"') ? p[2].slice(1, -1).replace(/\\(.)/g, "$1") : p[2];
    if (name.endsWith("*")) {
      name = name.slice(0, -1);
      const ext = /^([^']*)'[^']*'(.*)$/.exec(v);
      if (ext && /^(utf-8|us-ascii|)$/i.test(ext[1])) {
        try {
          v = decodeURIComponent(ext[2]);
        } catch { /* keep the raw text */ }
      }
    }
    if (!params.has(name)) params.set(name, v);
  }
  return { type: m[1].toLowerCase(), subtype: m[2].toLowerCase(), params, rawParams };
}

/**
 * The parts of a multipart body, each as the text between two delimiter
 * lines (without the CRLF that belongs to the next delimiter).
 *
 * @throws {SyntaxError} when no delimiter line is found
 * @example
 * ```ts
 * splitMultipart("--b\r\nA\r\n--b\r\nB\r\n--b--\r\n", "b"); // ["A", "B"]
 * ```
 */
export function splitMultipart(body: string, boundary: string): string[] {
  const delim = "--" + boundary;
  const lines = body.split("\r\n");
  const parts: string[] = [];
  let current: string[] | null = null;
  let found = false;
  for (const line of lines) {
    if (line.startsWith(delim)) {
      const tail = line.slice(delim.length);
      const closing = tail.startsWith("--");
      if (/^[ \t]*$/.test(closing ? tail.slice(2) : tail)) {
        if (current !== null) parts.push(current.join("\r\n"));
        found = true;
        if (closing) {
          current = null;
          break;
        }
        current = [];
        continue;
      }
    }
    if (current !== null) current.push(line);
  }
  // A missing closing delimiter: keep what the last part had.
  if (current !== null) parts.push(current.join("\r\n"));
  if (!found) {
    throw new SyntaxError(`Cannot parse message: multipart boundary "${boundary}" not found`);
  }
  return parts;
}

/**
 * Decode a base64 body, ignoring whitespace and stray characters.
 *
 * @example
 * ```ts
 * decodeBase64Body("aGk=\r\n"); // Uint8Array [0x68, 0x69]
 * ```
 */
export function decodeBase64Body(text: string): Uint8Array {
  let clean = text.replace(/[^A-Za-z0-9+/]/g, "");
  clean = clean.slice(0, clean.length - (clean.length % 4 === 1 ? 1 : 0));
  const bin = atob(clean + "=".repeat((4 - (clean.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const enc = new TextEncoder();

/**
 * Decode a quoted-printable body (RFC 2045 §6.7): `=XX` octets, soft line
 * breaks, trailing whitespace of each line dropped. Characters beyond
 * ASCII (a body that was never really encoded) are taken as UTF-8.
 *
 * @example
 * ```ts
 * decodeQuotedPrintableBody("caf=C3=A9=\r\n!\r\n"); // UTF-8 of "café!\r\n"
 * ```
 */
export function decodeQuotedPrintableBody(text: string): Uint8Array {
  const out: number[] = [];
  const lines = text.split("\r\n");
  for (let li = 0; li < lines.length; li++) {
    const line = Array.from(lines[li].replace(/[ \t]+$/, "")); // code points
    let soft = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      if (c === "=") {
        if (i === line.length - 1) {
          soft = true;
          break;
        }
        const hex = (line[i + 1] ?? "") + (line[i + 2] ?? "");
        if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
          out.push(parseInt(hex, 16));
          i += 2;
          continue;
        }
        out.push(0x3d);
        continue;
      }
      const code = c.charCodeAt(0);
      if (code < 0x80) out.push(code);
      else for (const b of enc.encode(c)) out.push(b);
    }
    if (!soft && li < lines.length - 1) out.push(0x0d, 0x0a);
  }
  return new Uint8Array(out);
}
