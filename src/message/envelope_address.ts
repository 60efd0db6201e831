/**
 * EnvelopeAddress: the SMTP envelope sender or recipient (RFC 5321 §4.1.2
 * Mailbox), as plain data `{ user, domain, email }`.
 *
 * Place on the mail's path: parsed by the SMTP server from `MAIL FROM` /
 * `RCPT TO` (via `smtp/protocol/command.ts`) and by the HTTP inject API,
 * stored with the message, handed to Lua as `msg:sender()` / `msg:recipient()`,
 * and rendered again by the SMTP client. It never touches sockets or Lua.
 *
 * Semantics follow KumoMTA (lua-api.md §7.2): `user` is the local part with
 * any quoting removed, `domain` keeps its case, `email` is the full address
 * (local part re-quoted only when it needs quoting), and the null sender `<>`
 * has all three fields empty.
 *
 * @module
 */

import ipaddr from "ipaddr.js";

/** An envelope address; the null sender has `user`, `domain` and `email` all `""`. */
export interface EnvelopeAddress {
  /** Local part, unquoted (`"john doe"@x` → `john doe`). */
  readonly user: string;
  /** Domain or address literal (`[192.0.2.1]`), case preserved; `""` for `<postmaster>` and `<>`. */
  readonly domain: string;
  /** Full address as it is rendered on the wire (without angle brackets). */
  readonly email: string;
}

/** The null reverse-path `<>`. */
export const NULL_SENDER: EnvelopeAddress = Object.freeze({ user: "", domain: "", email: "" });

/**
 * The text is not a valid RFC 5321 Mailbox.
 *
 * `reason` is the short detail (safe to show to the peer); `message` follows
 * the project wording: `Cannot parse address "x": reason`.
 */
export class AddressSyntaxError extends SyntaxError {
  /** The rejected text. */
  readonly address: string;
  /** Why it was rejected, e.g. `port not allowed in domain`. */
  readonly reason: string;
  constructor(address: string, reason: string) {
    super(`Cannot parse address ${JSON.stringify(address)}: ${reason}`);
    this.name = "AddressSyntaxError";
    this.address = address;
    this.reason = reason;
  }
}

// atext (RFC 5322 §3.2.3) plus UTF8-non-ascii (RFC 6531 §3.3).
const ATEXT = "A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~\\u0080-\\u{10FFFF}";
const DOT_STRING = new RegExp(`^[${ATEXT}]+(?:\\.[${ATEXT}]+)*$`, "u");
// sub-domain = Let-dig [Ldh-str]; U-labels allowed for SMTPUTF8.
const LET_DIG = "A-Za-z0-9\\u0080-\\u{10FFFF}";
const SUB_DOMAIN = new RegExp(`^[${LET_DIG}](?:[${LET_DIG}-]*[${LET_DIG}])?$`, "u");

/**
 * Parse the content between the angle brackets of a path: `user@domain`,
 * `"quoted local"@domain`, `user@[192.0.2.1]`, `user@[IPv6:2001:db8::1]`.
 * A source route (`@a,@b:user@d`) is accepted and ignored (RFC 5321 §4.1.2).
 * An empty string gives {@link NULL_SENDER}.
 *
 * @throws {AddressSyntaxError} on bad syntax, including a `:port` after the domain.
 * @example
 * ```ts
 * parseEnvelopeAddress('"john doe"@Example.com');
 * // { user: "john doe", domain: "Example.com", email: '"john doe"@Example.com' }
 * ```
 */
export function parseEnvelopeAddress(text: string): EnvelopeAddress {
  if (text === "") return NULL_SENDER;
  let s = text;
  if (s.charCodeAt(0) === 0x40 /* @ */) {
    // A-d-l ":" Mailbox — the route must be domains only, so the first ':' ends it.
    const colon = s.indexOf(":");
    if (colon < 0) throw new AddressSyntaxError(text, "source route without ':'");
    for (const hop of s.slice(0, colon).split(",")) {
      if (hop[0] !== "@" || !isDomain(hop.slice(1))) {
        throw new AddressSyntaxError(text, "invalid source route");
      }
    }
    s = s.slice(colon + 1);
  }

  let user: string;
  let rest: number; // index of '@'
  if (s.charCodeAt(0) === 0x22 /* " */) {
    const q = parseQuoted(s, text);
    user = q.user;
    rest = q.end;
    if (s.charCodeAt(rest) !== 0x40) {
      throw new AddressSyntaxError(text, "expected '@' after quoted local part");
    }
  } else {
    rest = s.indexOf("@");
    if (rest < 0) throw new AddressSyntaxError(text, "missing '@'");
    user = s.slice(0, rest);
    if (!DOT_STRING.test(user)) throw new AddressSyntaxError(text, "invalid local part");
  }
  const domain = s.slice(rest + 1);
  checkDomain(domain, text);
  return { user, domain, email: `${quoteLocalPart(user)}@${domain}` };
}

/**
 * Render an address for the wire, without angle brackets: the local part is
 * quoted when it is not a valid dot-string. The null sender renders as `""`.
 *
 * @example
 * ```ts
 * formatEnvelopeAddress({ user: "a b", domain: "x.test", email: "" }); // '"a b"@x.test'
 * ```
 */
export function formatEnvelopeAddress(addr: Pick<EnvelopeAddress, "user" | "domain">): string {
  if (addr.domain === "") return addr.user === "" ? "" : quoteLocalPart(addr.user);
  return `${quoteLocalPart(addr.user)}@${addr.domain}`;
}

/**
 * Build an address from its parts (no validation beyond quoting), e.g. for
 * `<postmaster>` or for addresses assembled by policy.
 *
 * @example
 * ```ts
 * makeEnvelopeAddress("postmaster", "").email; // "postmaster"
 * ```
 */
export function makeEnvelopeAddress(user: string, domain: string): EnvelopeAddress {
  return { user, domain, email: formatEnvelopeAddress({ user, domain }) };
}

/** True when an address needs SMTPUTF8 (any non-ASCII character). */
export function isNonAsciiAddress(addr: EnvelopeAddress): boolean {
  // deno-lint-ignore no-control-regex
  return /[^\x00-\x7f]/.test(addr.email);
}

function quoteLocalPart(user: string): string {
  if (DOT_STRING.test(user)) return user;
  return `"${user.replace(/["\\]/g, "\\$&")}"`;
}

/** Parse `"..."` at the start of `s`; returns the unquoted text and the index after the closing quote. */
function parseQuoted(s: string, text: string): { user: string; end: number } {
  let out = "";
  let i = 1;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c === 0x22) return { user: out, end: i + 1 };
    if (c === 0x5c /* \ */) {
      const n = s.charCodeAt(i + 1);
      // quoted-pairSMTP = %d92 %d32-126
      if (!(n >= 32 && n <= 126)) throw new AddressSyntaxError(text, "invalid quoted pair");
      out += s[i + 1];
      i += 2;
      continue;
    }
    // qtextSMTP = %d32-33 / %d35-91 / %d93-126, plus UTF8-non-ascii
    if (c < 32 || c === 127) throw new AddressSyntaxError(text, "control character in local part");
    out += s[i];
    i++;
  }
  throw new AddressSyntaxError(text, "unterminated quoted local part");
}

function checkDomain(domain: string, text: string): void {
  if (domain === "") throw new AddressSyntaxError(text, "missing domain");
  if (domain.charCodeAt(0) === 0x5b /* [ */) {
    const close = domain.indexOf("]");
    if (close < 0) throw new AddressSyntaxError(text, "unterminated address literal");
    if (close !== domain.length - 1) {
      throw new AddressSyntaxError(
        text,
        domain[close + 1] === ":" ? "port not allowed in domain" : "junk after address literal",
      );
    }
    const lit = domain.slice(1, close);
    if (/^ipv6:/i.test(lit)) {
      if (!ipaddr.IPv6.isValid(lit.slice(5))) {
        throw new AddressSyntaxError(text, "invalid IPv6 address literal");
      }
    } else if (!ipaddr.IPv4.isValidFourPartDecimal(lit)) {
      throw new AddressSyntaxError(text, "invalid address literal");
    }
    return;
  }
  if (/:\d*$/.test(domain)) throw new AddressSyntaxError(text, "port not allowed in domain");
  if (!isDomain(domain)) throw new AddressSyntaxError(text, "invalid domain");
}

function isDomain(domain: string): boolean {
  if (domain === "" || domain.length > 255) return false;
  for (const label of domain.split(".")) {
    if (label.length > 63 || !SUB_DOMAIN.test(label)) return false;
  }
  return true;
}
