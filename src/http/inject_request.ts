/**
 * The `POST /api/inject/v1` request (`InjectV1Request`, http-api.md §3.1,
 * §3.3): a strict shape check of the parsed JSON with unknown keys refused
 * everywhere, defaults filled in. A failure is a 422 whose text names the
 * offending path, like axum's `Failed to deserialize the JSON body into the
 * target type: …`.
 *
 * Place on the path: the inject endpoint calls {@link parseInjectRequest}
 * right after reading the body, before anything is compiled or spooled.
 * Pure data checking.
 *
 * @module
 */

import { HttpError } from "./request_body.ts";

/** An address with an optional display name (`from`, `reply_to`). */
export interface NamedAddress {
  email: string;
  name: string | null;
}

/** One attachment or inline part. */
export interface Attachment {
  data: string;
  contentType: string;
  base64: boolean;
  fileName: string | null;
  contentId: string | null;
}

/** The builder form of `content`. */
export interface BuilderContent {
  textBody: string | null;
  htmlBody: string | null;
  ampHtmlBody: string | null;
  subject: string | null;
  from: NamedAddress | null;
  replyTo: NamedAddress | null;
  /** Extra headers in request order. */
  headers: [string, string][];
  attachments: Attachment[];
}

/** One recipient. */
export interface InjectRecipient {
  email: string;
  name: string | null;
  substitutions: Record<string, unknown>;
  metadata: Record<string, unknown>;
}

/** Trace header control (HTTP defaults). */
export interface InjectTraceHeaders {
  receivedHeader: boolean;
  supplementalHeader: boolean;
  headerName: string;
  includeMetaNames: string[];
}

/** The template engine. */
export type TemplateDialect = "Jinja" | "Static" | "Handlebars";

/** A checked inject request. */
export interface InjectRequest {
  envelopeSender: string;
  recipients: InjectRecipient[];
  content: string | BuilderContent;
  substitutions: Record<string, unknown>;
  templateDialect: TemplateDialect;
  deferredSpool: boolean;
  deferredGeneration: boolean;
  traceHeaders: InjectTraceHeaders;
}

const PREFIX = "Failed to deserialize the JSON body into the target type: ";

function fail(path: string, detail: string): never {
  throw new HttpError(422, `${PREFIX}${path === "" ? "" : path + ": "}${detail}`);
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a sequence";
  if (typeof v === "object") return "a map";
  if (typeof v === "string") return `string ${JSON.stringify(v)}`;
  return `${typeof v} \`${String(v)}\``;
}

function obj(v: unknown, path: string, keys: readonly string[]): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    fail(path, `invalid type: ${typeName(v)}, expected a map`);
  }
  for (const k of Object.keys(v)) {
    if (!keys.includes(k)) {
      fail(
        path,
        `unknown field \`${k}\`, expected one of ${keys.map((x) => `\`${x}\``).join(", ")}`,
      );
    }
  }
  return v as Record<string, unknown>;
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

function str(o: Record<string, unknown>, key: string, path: string): string {
  const v = o[key];
  if (v === undefined) fail(path, `missing field \`${key}\``);
  if (typeof v !== "string") {
    fail(join(path, key), `invalid type: ${typeName(v)}, expected a string`);
  }
  return v;
}

function optStr(o: Record<string, unknown>, key: string, path: string): string | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== "string") {
    fail(join(path, key), `invalid type: ${typeName(v)}, expected a string`);
  }
  return v;
}

function optBool(o: Record<string, unknown>, key: string, path: string, dflt: boolean): boolean {
  const v = o[key];
  if (v === undefined) return dflt;
  if (typeof v !== "boolean") {
    fail(join(path, key), `invalid type: ${typeName(v)}, expected a boolean`);
  }
  return v;
}

function optMap(o: Record<string, unknown>, key: string, path: string): Record<string, unknown> {
  const v = o[key];
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) {
    fail(join(path, key), `invalid type: ${typeName(v)}, expected a map`);
  }
  return v as Record<string, unknown>;
}

function namedAddress(v: unknown, path: string): NamedAddress | null {
  if (v === undefined || v === null) return null;
  const o = obj(v, path, ["email", "name"]);
  return { email: str(o, "email", path), name: optStr(o, "name", path) };
}

function attachment(v: unknown, path: string): Attachment {
  const o = obj(v, path, ["data", "content_type", "base64", "file_name", "content_id"]);
  return {
    data: str(o, "data", path),
    contentType: str(o, "content_type", path),
    base64: optBool(o, "base64", path, false),
    fileName: optStr(o, "file_name", path),
    contentId: optStr(o, "content_id", path),
  };
}

function builder(v: Record<string, unknown>, path: string): BuilderContent {
  const o = obj(v, path, [
    "text_body",
    "html_body",
    "amp_html_body",
    "subject",
    "from",
    "reply_to",
    "headers",
    "attachments",
  ]);
  const headers: [string, string][] = [];
  for (const [k, hv] of Object.entries(optMap(o, "headers", path))) {
    if (typeof hv !== "string") {
      fail(`${path}.headers.${k}`, `invalid type: ${typeName(hv)}, expected a string`);
    }
    headers.push([k, hv]);
  }
  const atts = o.attachments;
  if (atts !== undefined && atts !== null && !Array.isArray(atts)) {
    fail(`${path}.attachments`, `invalid type: ${typeName(atts)}, expected a sequence`);
  }
  return {
    textBody: optStr(o, "text_body", path),
    htmlBody: optStr(o, "html_body", path),
    ampHtmlBody: optStr(o, "amp_html_body", path),
    subject: optStr(o, "subject", path),
    from: namedAddress(o.from, `${path}.from`),
    replyTo: namedAddress(o.reply_to, `${path}.reply_to`),
    headers,
    attachments: ((atts ?? []) as unknown[]).map((a, i) =>
      attachment(a, `${path}.attachments[${i}]`)
    ),
  };
}

function recipient(v: unknown, path: string): InjectRecipient {
  const o = obj(v, path, ["email", "name", "substitutions", "metadata"]);
  return {
    email: str(o, "email", path),
    name: optStr(o, "name", path),
    substitutions: optMap(o, "substitutions", path),
    metadata: optMap(o, "metadata", path),
  };
}

function traceHeaders(v: unknown, path: string): InjectTraceHeaders {
  const dflt: InjectTraceHeaders = {
    receivedHeader: false,
    supplementalHeader: true,
    headerName: "X-KumoRef",
    includeMetaNames: [],
  };
  if (v === undefined || v === null) return dflt;
  const o = obj(v, path, [
    "received_header",
    "supplemental_header",
    "header_name",
    "include_meta_names",
  ]);
  const names = o.include_meta_names;
  if (
    names !== undefined && names !== null &&
    (!Array.isArray(names) || !names.every((n) => typeof n === "string"))
  ) {
    fail(
      `${path}.include_meta_names`,
      `invalid type: ${typeName(names)}, expected a sequence of strings`,
    );
  }
  return {
    receivedHeader: optBool(o, "received_header", path, false),
    supplementalHeader: optBool(o, "supplemental_header", path, true),
    headerName: optStr(o, "header_name", path) ?? "X-KumoRef",
    includeMetaNames: (names ?? []) as string[],
  };
}

/**
 * Check and convert a parsed inject request.
 *
 * @throws {HttpError} 422 naming the offending field
 * @example
 * ```ts
 * const req = parseInjectRequest({ envelope_sender: "a@b.test", recipients: [], content: "x" });
 * req.templateDialect; // "Jinja"
 * ```
 */
export function parseInjectRequest(json: unknown): InjectRequest {
  const o = obj(json, "", [
    "envelope_sender",
    "recipients",
    "content",
    "substitutions",
    "template_dialect",
    "deferred_spool",
    "deferred_generation",
    "trace_headers",
  ]);
  const sender = str(o, "envelope_sender", "");
  const rcpts = o.recipients;
  if (rcpts === undefined) fail("", "missing field `recipients`");
  if (!Array.isArray(rcpts)) {
    fail("recipients", `invalid type: ${typeName(rcpts)}, expected a sequence`);
  }
  const content = o.content;
  if (content === undefined) fail("", "missing field `content`");
  let parsedContent: string | BuilderContent;
  if (typeof content === "string") parsedContent = content;
  else if (typeof content === "object" && content !== null && !Array.isArray(content)) {
    parsedContent = builder(content as Record<string, unknown>, "content");
  } else {
    fail("content", `invalid type: ${typeName(content)}, expected a string or a builder map`);
  }
  const dialect = o.template_dialect ?? "Jinja";
  if (dialect !== "Jinja" && dialect !== "Static" && dialect !== "Handlebars") {
    fail(
      "template_dialect",
      `unknown variant ${typeName(dialect)}, expected one of \`Jinja\`, \`Static\`, \`Handlebars\``,
    );
  }
  return {
    envelopeSender: sender,
    recipients: rcpts.map((r, i) => recipient(r, `recipients[${i}]`)),
    content: parsedContent,
    substitutions: optMap(o, "substitutions", ""),
    templateDialect: dialect,
    deferredSpool: optBool(o, "deferred_spool", "", false),
    deferredGeneration: optBool(o, "deferred_generation", "", false),
    traceHeaders: traceHeaders(o.trace_headers, "trace_headers"),
  };
}
