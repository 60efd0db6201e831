/**
 * The raw form of inject `content` after template expansion (http-api.md
 * §3.2): line ends normalized to CRLF, non-ASCII header values RFC 2047
 * encoded, and `MIME-Version: 1.0` appended to the header block when it is
 * missing. Bodies are passed through as written (see README: kumo-edge does
 * not re-encode the leaf parts of raw content).
 *
 * Place on the path: the inject endpoint calls {@link prepareRawMessage}
 * per recipient. Pure; a text that is not a message throws (that recipient
 * fails).
 *
 * @module
 */

import { hasNonAscii, headerLine, toCrlf, utf8 } from "./mime_encoding.ts";

/**
 * The message bytes for one expanded raw template.
 *
 * @throws {SyntaxError} when the text has no header section
 * @example
 * ```ts
 * prepareRawMessage("Subject: hi\n\nbody\n"); // "Subject: hi\r\nMIME-Version: 1.0\r\n\r\nbody\r\n"
 * ```
 */
export function prepareRawMessage(text: string): Uint8Array {
  const crlf = toCrlf(text);
  let end = crlf.indexOf("\r\n\r\n");
  let head: string;
  let body: string;
  if (end < 0) {
    // Headers only.
    head = crlf.endsWith("\r\n") ? crlf.slice(0, -2) : crlf;
    body = "";
    end = head.length;
  } else {
    head = crlf.slice(0, end);
    body = crlf.slice(end + 4);
  }
  const lines = head === "" ? [] : head.split("\r\n");
  const fields: [string, string][] = [];
  for (const line of lines) {
    if ((line[0] === " " || line[0] === "\t") && fields.length > 0) {
      fields[fields.length - 1][1] += "\r\n" + line;
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0 || !/^[\x21-\x39\x3b-\x7e]+$/.test(line.slice(0, colon))) {
      throw new SyntaxError(
        `Cannot parse message: invalid header line ${JSON.stringify(line.slice(0, 60))}`,
      );
    }
    fields.push([line.slice(0, colon), line.slice(colon + 1)]);
  }
  if (fields.length === 0) throw new SyntaxError("Cannot parse message: no headers");
  let out = "";
  let hasMimeVersion = false;
  for (const [name, raw] of fields) {
    if (name.toLowerCase() === "mime-version") hasMimeVersion = true;
    if (hasNonAscii(raw)) {
      const value = raw.replace(/\r\n[ \t]/g, " ").trim();
      out += headerLine(name, value);
    } else {
      out += `${name}:${raw}\r\n`;
    }
  }
  if (!hasMimeVersion) out += "MIME-Version: 1.0\r\n";
  return utf8(out + "\r\n" + body);
}
