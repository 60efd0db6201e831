/**
 * Parses address headers (From, To, Cc, Reply-To...) into mailbox entries
 * for `msg:from_header()` / `msg:get_address_header()`.
 *
 * Place on the path: message. RFC 5322 §3.4 address-list: display names
 * (atoms or quoted strings), `<addr-spec>`, bare addr-specs, comments and
 * groups (`undisclosed-recipients:;`). Encoded words in display names are
 * decoded by the caller's header decoding.
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

/** Parses an address-list header value. Entries that hold no address are skipped. */
export function parseAddressList(value: string): Mailbox[] {
  const out: Mailbox[] = [];
  const text = stripComments(value.replace(/\r?\n[ \t]/g, " "));
  for (let part of splitTopLevel(text, ",")) {
    part = part.trim();
    if (!part) continue;
    // group: "name: a, b;" — split already broke at commas; drop the label
    const colon = part.indexOf(":");
    const lt = part.indexOf("<");
    if (colon >= 0 && (lt < 0 || colon < lt) && !part.slice(0, colon).includes('"')) {
      part = part.slice(colon + 1).trim();
    }
    part = part.replace(/;\s*$/, "").trim();
    if (!part) continue;
    const open = part.lastIndexOf("<");
    const close = part.lastIndexOf(">");
    if (open >= 0 && close > open) {
      const email = part.slice(open + 1, close).trim();
      const name = unquote(part.slice(0, open));
      if (email) out.push(mailbox(email, name || undefined));
    } else if (part.includes("@")) {
      out.push(mailbox(part.replace(/\s+/g, "")));
    }
  }
  return out;
}
