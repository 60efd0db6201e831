/**
 * Inject content: compiles the templated fields of a request once and
 * builds each recipient's message bytes from them (http-api.md §3.2–§3.4),
 * with the per-recipient variables `email`, `name`, `to_header` layered
 * between the global and the recipient's own substitutions.
 *
 * Place on the path: the inject endpoint calls {@link prepareContent}
 * before anything is spooled (a 422 here refuses the whole request) and
 * `build()` inside its per-recipient loop (an error fails that recipient).
 * Pure apart from the template engine's memory; `close()` when done.
 *
 * @module
 */

import type {
  BuilderContent,
  InjectRecipient,
  InjectRequest,
  NamedAddress,
} from "./inject_request.ts";
import { compileTemplates, type TemplateSource } from "./inject_templates.ts";
import { HttpError } from "./request_body.ts";
import { buildMimeMessage, type BuiltAttachment } from "./mime_builder.ts";
import { prepareRawMessage } from "./raw_content.ts";
import { formatMailbox } from "./mime_encoding.ts";
import { parseEnvelopeAddress } from "../message/envelope_address.ts";
import { loadNormalizerDictionary } from "../util/normalize_smtp_response.ts";

/** Compiled content of one request. */
export interface PreparedContent extends Disposable {
  /** The message bytes for one recipient; throws when rendering or building fails. */
  build(rcpt: InjectRecipient, nowMs: number): Uint8Array;
  /** Release the compiled templates. */
  close(): void;
}

function hasTemplateSyntax(s: string): boolean {
  return s.includes("{{") || s.includes("{%");
}

/** Validate an address field up front (422), unless it is itself a template. */
function checkAddress(a: NamedAddress | null, field: string): void {
  if (a === null || hasTemplateSyntax(a.email)) return;
  try {
    parseEnvelopeAddress(a.email);
  } catch (e) {
    throw new HttpError(422, `Error: ${field}: ${(e as Error).message}`);
  }
}

function decodeAttachment(a: BuilderContent["attachments"][number], i: number): BuiltAttachment {
  let data: Uint8Array;
  if (a.base64) {
    try {
      const bin = atob(a.data.replace(/\s+/g, ""));
      data = new Uint8Array(bin.length);
      for (let j = 0; j < bin.length; j++) data[j] = bin.charCodeAt(j);
    } catch {
      throw new HttpError(422, `Error: content.attachments[${i}].data: invalid base64`);
    }
  } else {
    data = new TextEncoder().encode(a.data);
  }
  return { contentType: a.contentType, data, fileName: a.fileName, contentId: a.contentId };
}

/** The `To` value of a recipient: `"Name" <email>` or the bare address. */
export function toHeaderOf(rcpt: InjectRecipient): string {
  return formatMailbox("To", rcpt.name, rcpt.email);
}

/** Template variables of one recipient (later entries win). */
export function recipientVars(req: InjectRequest, rcpt: InjectRecipient): Record<string, unknown> {
  const vars: Record<string, unknown> = { ...req.substitutions, email: rcpt.email };
  if (rcpt.name !== null) vars.name = rcpt.name;
  vars.to_header = toHeaderOf(rcpt);
  return Object.assign(vars, rcpt.substitutions);
}

/**
 * Load what a request's templates need before {@link prepareContent}
 * compiles them: today the word list of the `normalize_smtp_response`
 * filter, loaded once and only by a request that uses the filter.
 */
export async function loadContentHelpers(req: InjectRequest): Promise<void> {
  if (JSON.stringify(req.content).includes("normalize_smtp_response")) {
    await loadNormalizerDictionary();
  }
}

/**
 * Compile a request's templates and validate its builder fields.
 *
 * @throws {HttpError} 422 for a template syntax error, a bad `from`/`reply_to`,
 * a builder without text or html body, or bad attachment base64
 */
export function prepareContent(req: InjectRequest): PreparedContent {
  const content = req.content;
  if (typeof content === "string") {
    const set = compileTemplates(req.templateDialect, [
      { name: "content", field: "content", source: content },
    ]);
    return {
      build(rcpt) {
        return prepareRawMessage(set.render("content", recipientVars(req, rcpt)));
      },
      close: () => set.close(),
      [Symbol.dispose]: () => set.close(),
    };
  }
  if (content.textBody === null && content.htmlBody === null) {
    throw new HttpError(422, "Error: content: text_body or html_body is required");
  }
  checkAddress(content.from, "content.from");
  checkAddress(content.replyTo, "content.reply_to");
  const attachments = content.attachments.map(decodeAttachment);
  const sources: TemplateSource[] = [];
  const add = (name: string, field: string, source: string | null, display?: string) => {
    if (source !== null) sources.push({ name, field, source, display });
  };
  add("text_body.txt", "content.text_body", content.textBody);
  add("html_body.html", "content.html_body", content.htmlBody);
  add("amp_html_body.html", "content.amp_html_body", content.ampHtmlBody);
  add("headers[Subject]", "content.subject", content.subject);
  // The address and the display name render apart (the name is encoded after
  // rendering); errors name the header, as upstream's `headers[<Name>]`.
  add("headers[From].email", "content.from.email", content.from?.email ?? null, "headers[From]");
  add("headers[From].name", "content.from.name", content.from?.name ?? null, "headers[From]");
  add(
    "headers[Reply-To].email",
    "content.reply_to.email",
    content.replyTo?.email ?? null,
    "headers[Reply-To]",
  );
  add(
    "headers[Reply-To].name",
    "content.reply_to.name",
    content.replyTo?.name ?? null,
    "headers[Reply-To]",
  );
  for (const [k, v] of content.headers) add(`headers[${k}]`, `content.headers.${k}`, v);
  const set = compileTemplates(req.templateDialect, sources);

  const mailbox = (vars: Record<string, unknown>, header: string, a: NamedAddress) => {
    const email = set.render(`headers[${header}].email`, vars).trim();
    parseEnvelopeAddress(email);
    const name = a.name === null ? null : set.render(`headers[${header}].name`, vars);
    return formatMailbox(header, name, email);
  };

  return {
    build(rcpt, nowMs) {
      const vars = recipientVars(req, rcpt);
      const headers: [string, string][] = [];
      // The headers map first; the From/Reply-To/Subject shortcuts override it.
      const shortcuts = new Set<string>();
      if (content.from !== null) shortcuts.add("from");
      if (content.replyTo !== null) shortcuts.add("reply-to");
      if (content.subject !== null) shortcuts.add("subject");
      for (const [k] of content.headers) {
        if (!shortcuts.has(k.toLowerCase())) headers.push([k, set.render(`headers[${k}]`, vars)]);
      }
      if (content.from !== null) headers.push(["From", mailbox(vars, "From", content.from)]);
      if (content.replyTo !== null) {
        headers.push(["Reply-To", mailbox(vars, "Reply-To", content.replyTo)]);
      }
      if (content.subject !== null) {
        headers.push(["Subject", set.render("headers[Subject]", vars)]);
      }
      return buildMimeMessage({
        textBody: content.textBody === null ? null : set.render("text_body.txt", vars),
        htmlBody: content.htmlBody === null ? null : set.render("html_body.html", vars),
        ampHtmlBody: content.ampHtmlBody === null ? null : set.render("amp_html_body.html", vars),
        headers,
        to: toHeaderOf(rcpt),
        attachments,
        nowMs,
      });
    },
    close: () => set.close(),
    [Symbol.dispose]: () => set.close(),
  };
}
