/**
 * KumoMTA's SMTP response normalizer (the `normalize_smtp_response`
 * template filter, http-api.md §3.4): per-transaction parts of a response
 * line become tokens — `{timestamp}` (RFC 3339), `{uuid}`, `{hash}`,
 * `{ipaddr}` (with an optional `:port`), `{base64}`, `{email}`,
 * `{duration}` (`11s 999ms`, `P1DT2H`), also on the right of `key=` — so
 * log processing can group similar events. Brackets around words are
 * dropped and runs of whitespace collapse to one space.
 *
 * Upstream keeps a dictionary of English words that would otherwise pass
 * as base64 (`this`, `mail`); here a word of letters only, all lower-case,
 * Capitalised or all upper-case, counts as such a word.
 *
 * Place on the path: beside it; pure. Used by the inject templates.
 *
 * @module
 */

const BASE64_RE = /^(?:[a-zA-Z0-9+/_-]{4})+(?:[a-zA-Z0-9+/_-]{2}==|[a-zA-Z0-9+/_-]{3}=)?$/;

const IP_RE = new RegExp(
  "^(?:\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}|(?:[0-9a-fA-F]{1,4}:){7,7}[0-9a-fA-F]{1,4}|" +
    "(?:[0-9a-fA-F]{1,4}:){1,7}:|(?:[0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|" +
    "(?:[0-9a-fA-F]{1,4}:){1,5}(?::[0-9a-fA-F]{1,4}){1,2}|(?:[0-9a-fA-F]{1,4}:){1,4}(?::[0-9a-fA-F]{1,4}){1,3}|" +
    "(?:[0-9a-fA-F]{1,4}:){1,3}(?::[0-9a-fA-F]{1,4}){1,4}|(?:[0-9a-fA-F]{1,4}:){1,2}(?::[0-9a-fA-F]{1,4}){1,5}|" +
    "[0-9a-fA-F]{1,4}:(?:(?::[0-9a-fA-F]{1,4}){1,6})|:(?:(?::[0-9a-fA-F]{1,4}){1,7}|:)|" +
    "fe80:(?::[0-9a-fA-F]{0,4}){0,4}%[0-9a-zA-Z]{1,}|" +
    "::(?:ffff(?::0{1,4}){0,1}:){0,1}(?:(?:25[0-5]|(?:2[0-4]|1{0,1}[0-9]){0,1}[0-9])\\.){3,3}(?:25[0-5]|(?:2[0-4]|1{0,1}[0-9]){0,1}[0-9])|" +
    "(?:[0-9a-fA-F]{1,4}:){1,4}:(?:(?:25[0-5]|(?:2[0-4]|1{0,1}[0-9]){0,1}[0-9])\\.){3,3}(?:25[0-5]|(?:2[0-4]|1{0,1}[0-9]){0,1}[0-9]))" +
    "(:?:\\d{1,5})?$",
);

const EMAIL_RE = new RegExp(
  "^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*|" +
    '"(?:[\\x01-\\x08\\x0b\\x0c\\x0e-\\x1f\\x21\\x23-\\x5b\\x5d-\\x7f]|\\\\[\\x01-\\x09\\x0b\\x0c\\x0e-\\x7f])*")' +
    "@(?:(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?|" +
    "\\[(?:(?:(?:2(?:5[0-5]|[0-4][0-9])|1[0-9][0-9]|[1-9]?[0-9]))\\.){3}(?:(?:2(?:5[0-5]|[0-4][0-9])|1[0-9][0-9]|[1-9]?[0-9])|" +
    "[a-z0-9-]*[a-z0-9]:(?:[\\x01-\\x08\\x0b\\x0c\\x0e-\\x1f\\x21-\\x5a\\x53-\\x7f]|\\\\[\\x01-\\x09\\x0b\\x0c\\x0e-\\x7f])+)\\])$",
);

const ISO8601_DURATION_RE =
  /^P(?:\d+(?:\.\d+)?Y)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?W)?(?:\d+(?:\.\d+)?D)?(?:T(?:\d+(?:\.\d+)?H)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?S)?)?$/;

const DURATION_RUN_RE =
  /\b\d+(?:ns|us|ms|s|m|h|day|month|year)(?:\s+\d+(?:ns|us|ms|s|m|h|day|month|year))*\b/g;

const RFC3339_RE =
  /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt ]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$/;

const HEX = "[0-9a-fA-F]";
const UUID_RE = new RegExp(
  `^(?:urn:uuid:)?(?:${HEX}{32}|${HEX}{8}-${HEX}{4}-${HEX}{4}-${HEX}{4}-${HEX}{12}|` +
    `\\{${HEX}{8}-${HEX}{4}-${HEX}{4}-${HEX}{4}-${HEX}{12}\\})$`,
);

const DICTIONARY_LIKE = /^(?:[a-z]+|[A-Z][a-z]+|[A-Z]+)$/;

function isHash(word: string): boolean {
  if (word.length < 8) return false;
  let alpha = 0;
  let digit = 0;
  for (const c of word) {
    if (/[A-Za-z]/.test(c)) alpha++;
    else if (/[0-9]/.test(c)) digit++;
    else if (c !== "-" && c !== "." && c !== "_") return false;
  }
  return alpha > 2 && digit > 2;
}

function normalizeWord(word: string): string | null {
  if (DICTIONARY_LIKE.test(word)) return word;
  if (word === "__DURATION__") return "{duration}";
  if (word.startsWith("P") && ISO8601_DURATION_RE.test(word)) return "{duration}";
  if (RFC3339_RE.test(word)) return "{timestamp}";
  if (UUID_RE.test(word)) return "{uuid}";
  if (isHash(word)) return "{hash}";
  if (IP_RE.test(word)) return "{ipaddr}";
  if (BASE64_RE.test(word)) return "{base64}";
  if (EMAIL_RE.test(word)) return "{email}";
  const eq = word.indexOf("=");
  if (eq >= 0) {
    const rhs = normalizeWord(word.slice(eq + 1));
    if (rhs !== null) return `${word.slice(0, eq)}=${rhs}`;
  }
  return null;
}

const ASCII_WS = /[ \t\n\r\f]/;
const ASCII_PUNCT = /[!-/:-@[-`{-~]/;

/** Drop brackets that open after whitespace or close before whitespace/punctuation. */
function dropBrackets(s: string): string {
  if (!/[[({]/.test(s)) return s;
  const chars = Array.from(s);
  let out = "";
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    const next = chars[i + 1];
    if ((ASCII_WS.test(c) || out === "") && next !== undefined && "[({".includes(next)) {
      i++;
      out += " ";
      continue;
    }
    if (
      "])}".includes(c) && (next === undefined || ASCII_WS.test(next) || ASCII_PUNCT.test(next))
    ) {
      i++;
      out += " ";
      continue;
    }
    out += c;
  }
  return out;
}

/**
 * Normalize one SMTP response text.
 *
 * @example
 * ```ts
 * normalizeSmtpResponse("250 OK ids=8a5475ccbbc611eda12250ebf67f93bd"); // "250 OK ids={uuid}"
 * normalizeSmtpResponse("421 4.1.0 10.0.0.1 throttled try later"); // "421 4.1.0 {ipaddr} throttled try later"
 * ```
 */
export function normalizeSmtpResponse(text: string): string {
  const s = dropBrackets(text.replace(DURATION_RUN_RE, "__DURATION__"));
  const words: string[] = [];
  for (const w of s.split(/[ \t\n\r\f]+/)) {
    if (w !== "") words.push(normalizeWord(w) ?? w);
  }
  return words.join(" ");
}
