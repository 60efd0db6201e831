/**
 * The raw form of inject `content` after template expansion (http-api.md
 * §3.2): the text is parsed as MIME and written out again. Line ends
 * become CRLF; every leaf body is decoded (base64, quoted-printable, or
 * taken as the text it is) and re-encoded — 7bit when it is ASCII without
 * over-long lines, else quoted-printable or base64, whichever is smaller
 * (binary leaves: base64) — text leaves as UTF-8 with `charset="us-ascii"`
 * or `"utf-8"`; each entity's `Content-Type` (and, when needed,
 * `Content-Transfer-Encoding`) comes first, then its other header fields
 * in their original order, non-ASCII text RFC 2047-encoded; the root gets
 * `MIME-Version: 1.0` at the end of its header when it had none.
 * Multipart boundaries are kept; preamble and epilogue are dropped (MIME
 * readers ignore them); `Content-ID` and every other field of a part are
 * kept. A `message/rfc822` part is rebuilt the same way (left as written
 * when it does not parse); a leaf with an unknown transfer encoding, or a
 * text leaf whose charset cannot be decoded, keeps its Content-Type and is
 * only re-encoded as bytes.
 *
 * Place on the path: the inject endpoint calls {@link prepareRawMessage}
 * per recipient. Pure; a text that is not a message throws (that recipient
 * fails, counted in `fail_count`).
 *
 * @module
 */

import { encodeBody, hasNonAscii, headerLine, toCrlf, utf8 } from "./mime_encoding.ts";
import { type Part, serializePart, textPart } from "./mime_builder.ts";
import {
  type ContentType,
  decodeBase64Body,
  decodeQuotedPrintableBody,
  fieldValue,
  type MimeEntity,
  parseContentType,
  splitEntity,
  splitMultipart,
} from "./mime_parse.ts";

const MAX_DEPTH = 20;
const IDENTITY = new Set(["7bit", "8bit", "binary"]);

/** Fields other than Content-Type / Content-Transfer-Encoding, as formatted lines. */
function otherFields(fields: readonly [string, string][]): string {
  let out = "";
  for (const [name, raw] of fields) {
    const lower = name.toLowerCase();
    if (lower === "content-type" || lower === "content-transfer-encoding") continue;
    out += hasNonAscii(raw)
      ? headerLine(name, raw.replace(/\r\n(?=[ \t])/g, "").trim())
      : `${name}:${raw}\r\n`;
  }
  return out;
}

/** Text of a decoded text leaf, or null when its charset cannot be read. */
function decodeText(bytes: Uint8Array, charset: string | undefined): string | null {
  let label = (charset ?? "").trim().toLowerCase();
  // WHATWG maps "us-ascii" to windows-1252; UTF-8 is the safe superset of ASCII.
  if (label === "" || label === "us-ascii" || label === "ascii") label = "utf-8";
  try {
    return new TextDecoder(label, { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

function bytesLeaf(contentType: string, bytes: Uint8Array, textual: boolean, rest: string): Part {
  const e = encodeBody(bytes, textual);
  const headers: [string, string][] = [["Content-Type", contentType]];
  if (e.cte !== "7bit") headers.push(["Content-Transfer-Encoding", e.cte]);
  return { headers, body: e.text, rawHeaders: rest };
}

function verbatimBody(body: string): string {
  return body === "" || body.endsWith("\r\n") ? body : body + "\r\n";
}

function rebuild(entity: MimeEntity, defaultType: string, depth: number): Part {
  if (depth > MAX_DEPTH) {
    throw new SyntaxError(`Cannot parse message: MIME nesting deeper than ${MAX_DEPTH}`);
  }
  const ctText = fieldValue(entity.fields, "content-type");
  const ct: ContentType = (ctText === undefined ? undefined : parseContentType(ctText)) ??
    parseContentType(defaultType)!;
  const ctValue = ctText !== undefined && parseContentType(ctText) ? ctText : defaultType;
  const rest = otherFields(entity.fields);

  if (ct.type === "multipart") {
    const boundary = ct.params.get("boundary");
    if (!boundary) throw new SyntaxError(`Cannot parse message: ${ctValue} without a boundary`);
    const childDefault = ct.subtype === "digest" ? "message/rfc822" : "text/plain";
    const children = splitMultipart(entity.body, boundary).map((t) =>
      rebuild(splitEntity(t), childDefault, depth + 1)
    );
    return { headers: [["Content-Type", ctValue]], rawHeaders: rest, body: children, boundary };
  }

  const cteRaw = fieldValue(entity.fields, "content-transfer-encoding");
  const cte = (cteRaw ?? "7bit").toLowerCase();
  if (ct.type === "message" && ct.subtype === "rfc822" && IDENTITY.has(cte)) {
    let nested: string;
    try {
      const out: string[] = [];
      serializePart(rebuild(splitEntity(entity.body), "text/plain", depth + 1), out);
      nested = out.join("");
    } catch {
      nested = verbatimBody(entity.body);
    }
    return { headers: [["Content-Type", ctValue]], rawHeaders: rest, body: nested };
  }
  if (!IDENTITY.has(cte) && cte !== "base64" && cte !== "quoted-printable") {
    // An encoding we cannot undo: keep the part as written.
    return {
      headers: [["Content-Type", ctValue], ["Content-Transfer-Encoding", cteRaw!]],
      rawHeaders: rest,
      body: verbatimBody(entity.body),
    };
  }
  const encoded = cte === "base64" || cte === "quoted-printable";
  if (ct.type === "text") {
    const text = encoded
      ? decodeText(
        cte === "base64" ? decodeBase64Body(entity.body) : decodeQuotedPrintableBody(entity.body),
        ct.params.get("charset"),
      )
      : entity.body;
    if (text === null) {
      const bytes = cte === "base64"
        ? decodeBase64Body(entity.body)
        : decodeQuotedPrintableBody(entity.body);
      return bytesLeaf(ctValue, bytes, true, rest);
    }
    const params = ct.rawParams.filter(([n]) => n !== "charset" && n !== "charset*")
      .map(([, raw]) => `; ${raw}`).join("");
    const part = textPart(ct.subtype, text, params);
    part.rawHeaders = rest;
    return part;
  }
  const bytes = cte === "base64"
    ? decodeBase64Body(entity.body)
    : cte === "quoted-printable"
    ? decodeQuotedPrintableBody(entity.body)
    : utf8(entity.body);
  return bytesLeaf(ctValue, bytes, false, rest);
}

/**
 * The message bytes for one expanded raw template.
 *
 * @throws {SyntaxError} when the text has no header section, a header line
 * is malformed, or a multipart has no (findable) boundary
 * @example
 * ```ts
 * prepareRawMessage("Subject: hi\n\ncafé\n");
 * // 'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n' +
 * // 'Subject: hi\r\nMIME-Version: 1.0\r\n\r\ncaf=C3=A9\r\n'
 * ```
 */
export function prepareRawMessage(text: string): Uint8Array {
  const root = splitEntity(toCrlf(text));
  if (root.fields.length === 0) throw new SyntaxError("Cannot parse message: no headers");
  const part = rebuild(root, "text/plain", 0);
  if (fieldValue(root.fields, "mime-version") === undefined) {
    part.rawHeaders = (part.rawHeaders ?? "") + "MIME-Version: 1.0\r\n";
  }
  const out: string[] = [];
  serializePart(part, out);
  return utf8(out.join(""));
}
