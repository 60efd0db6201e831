/**
 * Parses address headers (From, To, Cc, Reply-To...) into mailbox entries
 * for `msg:from_header()` / `msg:get_address_header()`.
 *
 * Place on the path: message. RFC 5322 §3.4 address-list: display names
 * (atoms or quoted strings), `<addr-spec>`, bare addr-specs, comments and
 * groups (`undisclosed-recipients:;`). Encoded words in display names are
 * decoded by the caller's header decoding. Also renders upstream's JSON for
 * `tostring()` of an AddressHeader and of its `list` entries.
 *
 * @module
 */

/** One mailbox of an address header. */
export interface Mailbox {
  name?: string;
  email: string;
  user: string;
  domain: string;
}

function stripComments(s: string): string {
  let out = "";
  let depth = 0;
  let inQuote = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inQuote) {
      out += c;
      if (c === "\\" && i + 1 < s.length) out += s[++i];
      else if (c === '"') inQuote = false;
      continue;
    }
    if (c === '"' && depth === 0) {
      inQuote = true;
      out += c;
    } else if (c === "(") depth++;
    else if (c === ")" && depth > 0) depth--;
    else if (depth === 0) out += c;
  }
  return out;
}

function splitTopLevel(s: string, sep: string): string[] {
  const parts: string[] = [];
  let cur = "";
  let inQuote = false;
  let inAngle = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inQuote) {
      cur += c;
      if (c === "\\" && i + 1 < s.length) cur += s[++i];
      else if (c === '"') inQuote = false;
      continue;
    }
    if (c === '"') inQuote = true;
    else if (c === "<") inAngle = true;
    else if (c === ">") inAngle = false;
    else if (c === sep && !inAngle) {
      parts.push(cur);
      cur = "";
      continue;
    }
    cur += c;
  }
  parts.push(cur);
  return parts;
}

function unquote(s: string): string {
  s = s.trim();
  if (s.startsWith('"') && s.endsWith('"') && s.length >= 2) {
    return s.slice(1, -1).replace(/\\(.)/g, "$1");
  }
  return s.replace(/\s+/g, " ");
}

function mailbox(email: string, name?: string): Mailbox {
  const at = email.lastIndexOf("@");
  const user = at < 0 ? email : unquote(email.slice(0, at));
  const domain = at < 0 ? "" : email.slice(at + 1);
  const m: Mailbox = { email, user, domain };
  if (name) m.name = name;
  return m;
}

/** One top-level entry of an address header: a mailbox, or a group of them. */
export type AddressEntry =
  | { kind: "mailbox"; mailbox: Mailbox }
  | { kind: "group"; name?: string; mailboxes: Mailbox[] };

function parseMailbox(part: string): Mailbox | null {
  part = part.trim();
  if (!part) return null;
  const open = part.lastIndexOf("<");
  const close = part.lastIndexOf(">");
  if (open >= 0 && close > open) {
    const email = part.slice(open + 1, close).trim();
    const name = unquote(part.slice(0, open));
    return email ? mailbox(email, name || undefined) : null;
  }
  return part.includes("@") ? mailbox(part.replace(/\s+/g, "")) : null;
}

/** The colon that opens a group (`name: a, b;`) in `part`, or -1. */
function groupColon(part: string): number {
  const colon = part.indexOf(":");
  const lt = part.indexOf("<");
  return colon >= 0 && (lt < 0 || colon < lt) && !part.slice(0, colon).includes('"') ? colon : -1;
}

/**
 * Parses an address-list header value into its top-level entries, keeping
 * groups (`undisclosed-recipients:;`, `team: a@x, b@y;`). Entries that hold
 * no address are skipped; a group keeps its place even when empty.
 *
 * @example
 * ```ts
 * parseAddressHeader("Ann <a@x.test>, team: b@y.test;");
 * // [{kind: "mailbox", ...}, {kind: "group", name: "team", mailboxes: [...]}]
 * ```
 */
export function parseAddressHeader(value: string): AddressEntry[] {
  const out: AddressEntry[] = [];
  const text = stripComments(value.replace(/\r?\n[ \t]/g, " "));
  let group: { kind: "group"; name?: string; mailboxes: Mailbox[] } | null = null;
  for (let part of splitTopLevel(text, ",")) {
    const colon = group === null ? groupColon(part) : -1;
    if (colon >= 0) {
      const name = unquote(part.slice(0, colon));
      group = { kind: "group", mailboxes: [] };
      if (name) group.name = name;
      out.push(group);
      part = part.slice(colon + 1);
    }
    const ends = group !== null && /;\s*$/.test(part);
    part = part.replace(/;\s*$/, "");
    const mb = parseMailbox(part);
    if (mb !== null) {
      if (group !== null) group.mailboxes.push(mb);
      else out.push({ kind: "mailbox", mailbox: mb });
    }
    if (ends) group = null;
  }
  return out;
}

/** Parses an address-list header value; groups are flattened into their mailboxes. */
export function parseAddressList(value: string): Mailbox[] {
  return parseAddressHeader(value).flatMap((e) => e.kind === "mailbox" ? [e.mailbox] : e.mailboxes);
}

function mailboxJson(m: Mailbox): { name: string | null; address: string } {
  return { name: m.name ?? null, address: m.email };
}

/**
 * `tostring()` of an AddressHeader, upstream's JSON: an array of
 * `{"Address":{"name":…,"address":…}}` and
 * `{"Group":{"name":…,"addresses":[…]}}` entries.
 */
export function addressHeaderJson(entries: readonly AddressEntry[]): string {
  return JSON.stringify(
    entries.map((e) =>
      e.kind === "mailbox"
        ? { Address: mailboxJson(e.mailbox) }
        : { Group: { name: e.name ?? null, addresses: e.mailboxes.map(mailboxJson) } }
    ),
  );
}

/**
 * Why the single-address fields (`user`, `domain`, `email`, `name`) of an
 * AddressHeader cannot be read, or null when the header is one plain mailbox.
 */
export function singleAddressProblem(entries: readonly AddressEntry[]): string | null {
  if (entries.length === 0) return "the header holds no address";
  if (entries.length > 1) return `the header holds ${entries.length} entries, not one address`;
  if (entries[0].kind === "group") return "the header is a group, not a simple address";
  return null;
}
