/**
 * SMTP commands: the server-side parser (one command line → typed data) and
 * the client-side encoders for `MAIL FROM` / `RCPT TO`.
 *
 * Place on the mail's path: `smtp/server/` parses every line the line reader
 * yields with {@link parseCommand}; `smtp/client/` builds its pipelined
 * command group with {@link encodeMailFrom} / {@link encodeRcptTo}. It never
 * decides policy: a syntax error comes back as data carrying the exact reply
 * (queues-and-delivery.md §9.3, lua-api.md §9) and the server sends it.
 *
 * Grammar: RFC 5321 §4.1.1–4.1.2, ESMTP parameters per RFC 5321 §4.1.2
 * (`esmtp-keyword ["=" esmtp-value]`), RFC 6531 for UTF-8.
 *
 * @module
 */

import {
  AddressSyntaxError,
  type EnvelopeAddress,
  formatEnvelopeAddress,
  makeEnvelopeAddress,
  NULL_SENDER,
  parseEnvelopeAddress,
} from "../../message/envelope_address.ts";
import type { SmtpReply } from "./reply.ts";

/** Verbs the server recognises; anything else is `Unknown`. */
export type Verb =
  | "EHLO"
  | "HELO"
  | "LHLO"
  | "MAIL"
  | "RCPT"
  | "DATA"
  | "RSET"
  | "NOOP"
  | "QUIT"
  | "VRFY"
  | "EXPN"
  | "HELP"
  | "STARTTLS"
  | "AUTH"
  | "XCLIENT"
  | "Unknown";

/** ESMTP parameters: upper-cased keyword → value (`null` when given without `=`). */
export type EsmtpParams = Map<string, string | null>;

/** `EHLO`/`HELO`/`LHLO` with the client's name (domain or address literal, unchecked). */
export interface HelloCommand {
  verb: "EHLO" | "HELO" | "LHLO";
  domain: string;
}
/** `MAIL FROM:<addr> [params]`; the null sender is {@link NULL_SENDER}. */
export interface MailCommand {
  verb: "MAIL";
  address: EnvelopeAddress;
  params: EsmtpParams;
}
/** `RCPT TO:<addr> [params]`; `<postmaster>` gives `{user: "postmaster", domain: ""}`. */
export interface RcptCommand {
  verb: "RCPT";
  address: EnvelopeAddress;
  params: EsmtpParams;
}
/** Commands without arguments. */
export interface BareCommand {
  verb: "DATA" | "RSET" | "QUIT" | "STARTTLS";
}
/** Commands whose argument is kept as text (possibly empty). */
export interface TextCommand {
  verb: "NOOP" | "VRFY" | "EXPN" | "HELP";
  argument: string;
}
/** `AUTH mechanism [initial-response]`; the mechanism is upper-cased. */
export interface AuthCommand {
  verb: "AUTH";
  mechanism: string;
  /** The initial response as sent (base64, or `=` for empty), if any. */
  initialResponse?: string;
}
/** `XCLIENT name=value ...`; names upper-cased, values xtext-decoded. */
export interface XclientCommand {
  verb: "XCLIENT";
  attributes: Map<string, string>;
}
/** A verb the server does not know (answered `502 5.5.1`). */
export interface UnknownCommand {
  verb: "Unknown";
  /** The verb as sent. */
  name: string;
  argument: string;
}
/** A known verb with bad arguments: send `reply` as is. */
export interface InvalidCommand {
  verb: "Invalid";
  /** The verb that was attempted. */
  attempted: Verb;
  /** The exact reply to send (always 501). */
  reply: SmtpReply;
}

/** Result of {@link parseCommand}. */
export type Command =
  | HelloCommand
  | MailCommand
  | RcptCommand
  | BareCommand
  | TextCommand
  | AuthCommand
  | XclientCommand
  | UnknownCommand
  | InvalidCommand;

const VERBS: ReadonlySet<string> = new Set([
  "EHLO",
  "HELO",
  "LHLO",
  "MAIL",
  "RCPT",
  "DATA",
  "RSET",
  "NOOP",
  "QUIT",
  "VRFY",
  "EXPN",
  "HELP",
  "STARTTLS",
  "AUTH",
  "XCLIENT",
]);

function syntaxError(attempted: Verb, detail: string): InvalidCommand {
  return {
    verb: "Invalid",
    attempted,
    reply: { code: 501, text: `Syntax error in command or arguments: ${detail}` },
  };
}
function badSender(detail: string): InvalidCommand {
  return {
    verb: "Invalid",
    attempted: "MAIL",
    reply: {
      code: 501,
      enhanced: { class: 5, subject: 1, detail: 7 },
      text: `Invalid sender address syntax: ${detail}`,
    },
  };
}
const BAD_RECIPIENT: InvalidCommand = Object.freeze({
  verb: "Invalid",
  attempted: "RCPT",
  reply: Object.freeze({
    code: 501,
    enhanced: Object.freeze({ class: 5, subject: 1, detail: 3 }),
    text: "Invalid recipient address syntax",
  }),
}) as InvalidCommand;

/**
 * Parse one command line (without its CRLF). Verbs are case-insensitive.
 * Never throws: bad syntax gives an {@link InvalidCommand} carrying the exact
 * reply — `501 5.1.7 Invalid sender address syntax: <detail>`,
 * `501 5.1.3 Invalid recipient address syntax` or
 * `501 Syntax error in command or arguments: <detail>`.
 *
 * Hot path: one call per command line; a few small strings, no regex on the verb.
 *
 * @example
 * ```ts
 * const c = parseCommand("MAIL FROM: <a@b.test> BODY=8BITMIME");
 * // { verb: "MAIL", address: { user: "a", domain: "b.test", email: "a@b.test" },
 * //   params: Map { "BODY" => "8BITMIME" } }
 * ```
 */
export function parseCommand(line: string): Command {
  const sp = line.indexOf(" ");
  const name = sp < 0 ? line : line.slice(0, sp);
  const verb = name.toUpperCase();
  if (!VERBS.has(verb)) {
    return { verb: "Unknown", name, argument: sp < 0 ? "" : line.slice(sp + 1) };
  }
  // Leading/trailing spaces around arguments are tolerated.
  const arg = sp < 0 ? "" : line.slice(sp + 1).trim();
  switch (verb) {
    case "EHLO":
    case "HELO":
    case "LHLO":
      if (arg === "") return syntaxError(verb, `${verb} requires a domain`);
      if (arg.indexOf(" ") >= 0) return syntaxError(verb, `unexpected text after ${verb} domain`);
      return { verb, domain: arg };
    case "MAIL":
      return parseMail(arg);
    case "RCPT":
      return parseRcpt(arg);
    case "DATA":
    case "RSET":
    case "QUIT":
    case "STARTTLS":
      if (arg !== "") return syntaxError(verb, `${verb} takes no arguments`);
      return { verb };
    case "NOOP":
    case "HELP":
      return { verb, argument: arg };
    case "VRFY":
    case "EXPN":
      if (arg === "") return syntaxError(verb, `${verb} requires an argument`);
      return { verb, argument: arg };
    case "AUTH":
      return parseAuth(arg);
    default: // XCLIENT
      return parseXclient(arg);
  }
}

/** `FROM:` or `TO:` prefix (case-insensitive), optional spaces after the colon. */
function afterPrefix(arg: string, prefix: string): number {
  if (arg.length < prefix.length || arg.slice(0, prefix.length).toUpperCase() !== prefix) {
    return -1;
  }
  let i = prefix.length;
  while (arg.charCodeAt(i) === 0x20) i++;
  return i;
}

/**
 * Find the path `<...>` starting at `start` (which must be `<`); returns the
 * index of the closing `>`, honouring quoted local parts (`<"a>b"@x>`).
 */
function pathEnd(arg: string, start: number): number {
  if (arg.charCodeAt(start) !== 0x3c /* < */) return -1;
  let quoted = false;
  for (let i = start + 1; i < arg.length; i++) {
    const c = arg.charCodeAt(i);
    if (quoted) {
      if (c === 0x5c) i++;
      else if (c === 0x22) quoted = false;
    } else if (c === 0x22) quoted = true;
    else if (c === 0x3e /* > */) return i;
  }
  return -1;
}

type ParamsResult = EsmtpParams | string;

/** Parse `kw[=value] kw[=value]...`; returns an error detail string on bad syntax. */
function parseParams(text: string): ParamsResult {
  const params: EsmtpParams = new Map();
  if (text === "") return params;
  for (const item of text.split(" ")) {
    if (item === "") continue; // tolerate repeated spaces
    const eq = item.indexOf("=");
    const kw = (eq < 0 ? item : item.slice(0, eq)).toUpperCase();
    if (!/^[A-Z0-9][A-Z0-9-]*$/.test(kw)) return `invalid parameter "${item}"`;
    let value: string | null = null;
    if (eq >= 0) {
      value = item.slice(eq + 1);
      // esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 (RFC 6531)
      // deno-lint-ignore no-control-regex
      if (value === "" || /[\x00-\x20=\x7f]/.test(value)) return `invalid parameter "${item}"`;
    }
    if (params.has(kw)) return `duplicate parameter "${kw}"`;
    params.set(kw, value);
  }
  const size = params.get("SIZE");
  if (size !== undefined && (size === null || !/^\d{1,20}$/.test(size))) {
    return `invalid SIZE parameter`;
  }
  const body = params.get("BODY");
  if (body !== undefined) {
    if (body === null) return `invalid BODY parameter`;
    params.set("BODY", body.toUpperCase());
  }
  return params;
}

function parseMail(arg: string): Command {
  const at = afterPrefix(arg, "FROM:");
  if (at < 0) return syntaxError("MAIL", "expected MAIL FROM:<address>");
  const end = pathEnd(arg, at);
  if (end < 0) return badSender("expected <address>");
  let address: EnvelopeAddress;
  const inner = arg.slice(at + 1, end);
  try {
    address = inner === "" ? NULL_SENDER : parseEnvelopeAddress(inner);
  } catch (e) {
    if (e instanceof AddressSyntaxError) return badSender(e.reason);
    throw e;
  }
  const rest = arg.slice(end + 1);
  if (rest !== "" && rest.charCodeAt(0) !== 0x20) {
    return syntaxError("MAIL", "expected a space before parameters");
  }
  const params = parseParams(rest);
  if (typeof params === "string") return syntaxError("MAIL", params);
  return { verb: "MAIL", address, params };
}

function parseRcpt(arg: string): Command {
  const at = afterPrefix(arg, "TO:");
  if (at < 0) return syntaxError("RCPT", "expected RCPT TO:<address>");
  const end = pathEnd(arg, at);
  if (end < 0) return BAD_RECIPIENT;
  const inner = arg.slice(at + 1, end);
  let address: EnvelopeAddress;
  if (inner.length === 10 && inner.toLowerCase() === "postmaster") {
    // RFC 5321 §4.1.1.3: <Postmaster> without a domain must be accepted.
    address = makeEnvelopeAddress(inner, "");
  } else {
    if (inner === "") return BAD_RECIPIENT;
    try {
      address = parseEnvelopeAddress(inner);
    } catch (e) {
      if (e instanceof AddressSyntaxError) return BAD_RECIPIENT;
      throw e;
    }
  }
  const rest = arg.slice(end + 1);
  if (rest !== "" && rest.charCodeAt(0) !== 0x20) {
    return syntaxError("RCPT", "expected a space before parameters");
  }
  const params = parseParams(rest);
  if (typeof params === "string") return syntaxError("RCPT", params);
  return { verb: "RCPT", address, params };
}

function parseAuth(arg: string): Command {
  if (arg === "") return syntaxError("AUTH", "AUTH requires a mechanism");
  const parts = arg.split(" ").filter((p) => p !== "");
  if (parts.length > 2) return syntaxError("AUTH", "too many arguments");
  const mechanism = parts[0].toUpperCase();
  if (!/^[A-Z0-9_-]{1,20}$/.test(mechanism)) return syntaxError("AUTH", "invalid mechanism");
  return parts.length === 2
    ? { verb: "AUTH", mechanism, initialResponse: parts[1] }
    : { verb: "AUTH", mechanism };
}

function parseXclient(arg: string): Command {
  if (arg === "") return syntaxError("XCLIENT", "XCLIENT requires attributes");
  const attributes = new Map<string, string>();
  for (const item of arg.split(" ")) {
    if (item === "") continue;
    const eq = item.indexOf("=");
    if (eq <= 0) return syntaxError("XCLIENT", `invalid attribute "${item}"`);
    const value = decodeXtext(item.slice(eq + 1));
    if (value === null) return syntaxError("XCLIENT", `invalid attribute "${item}"`);
    attributes.set(item.slice(0, eq).toUpperCase(), value);
  }
  return { verb: "XCLIENT", attributes };
}

/** RFC 3461 xtext: `+XX` hex escapes. */
function decodeXtext(s: string): string | null {
  if (s.indexOf("+") < 0) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== "+") {
      out += s[i];
      continue;
    }
    const hex = s.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return null;
    out += String.fromCharCode(parseInt(hex, 16));
    i += 2;
  }
  return out;
}

/** Options for {@link encodeMailFrom}. */
export interface MailFromOptions {
  /** Add `BODY=8BITMIME` (the body has 8-bit content and the server offers 8BITMIME). @default false */
  eightBit?: boolean;
  /** Add `SMTPUTF8` (non-ASCII envelope and the server offers SMTPUTF8). @default false */
  smtputf8?: boolean;
}

/**
 * Encode `MAIL FROM:<addr>[ BODY=8BITMIME][ SMTPUTF8]\r\n` (client side; no
 * SIZE/RET/ENVID are ever sent, queues-and-delivery.md §5.2). The result
 * includes the CRLF, as the delivery log's `command` field does.
 *
 * @example
 * ```ts
 * encodeMailFrom(NULL_SENDER, {}); // "MAIL FROM:<>\r\n"
 * ```
 */
export function encodeMailFrom(
  addr: Pick<EnvelopeAddress, "user" | "domain">,
  options: MailFromOptions = {},
): string {
  let s = `MAIL FROM:<${formatEnvelopeAddress(addr)}>`;
  if (options.eightBit) s += " BODY=8BITMIME";
  if (options.smtputf8) s += " SMTPUTF8";
  return s + "\r\n";
}

/**
 * Encode `RCPT TO:<addr>\r\n` (client side; no NOTIFY/ORCPT).
 *
 * @example
 * ```ts
 * encodeRcptTo({ user: "a", domain: "b.test" }); // "RCPT TO:<a@b.test>\r\n"
 * ```
 */
export function encodeRcptTo(addr: Pick<EnvelopeAddress, "user" | "domain">): string {
  return `RCPT TO:<${formatEnvelopeAddress(addr)}>\r\n`;
}
