/**
 * `kumo.string.normalize_smtp_response` (and the `normalize_smtp_response`
 * template filter): replaces the per-user, per-transaction parts of an SMTP
 * response with tokens so that similar responses group together in logs.
 *
 * Place on the path: shared by policy (host functions), log templates and
 * the inject API templates (src/http/inject_templates.ts). Follows
 * upstream's tokenizer (`mod-smtp-response-normalize`) step for step:
 * durations such as `11s 999ms` become one word; bracket punctuation next to
 * whitespace becomes whitespace; then each whitespace-separated word is tried,
 * in order, as a dictionary word (kept), `__DURATION__`/ISO 8601 duration
 * (`{duration}`), RFC 3339 timestamp (`{timestamp}`), UUID (`{uuid}`),
 * hash-like token (`{hash}`), IP address with optional port (`{ipaddr}`),
 * base64 (`{base64}`), email address (`{email}`), and `lhs=rhs` with the
 * right side normalized recursively. Words are re-joined with single spaces.
 *
 * The dictionary (English words from the `an-array-of-english-words` package,
 * plus their Titlecase forms and a few mail acronyms) only matters for words
 * that would otherwise look like base64 (`that`, `requirements`), so only
 * those are kept; it is loaded on first use ({@link loadNormalizerDictionary}).
 *
 * @module
 */

type Normalizer = (word: string) => string | undefined;

/** Base64 or base64url, optionally padded. */
const BASE64_RE = /^(?:[a-zA-Z0-9+/_\-]{4})+(?:[a-zA-Z0-9+/_\-]{2}==|[a-zA-Z0-9+/_\-]{3}=)?$/;

/** IPv4 or IPv6 with an optional `:port` (upstream's expression). */
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

/** RFC 5321-ish email address (upstream's expression; lower-case local part and domain). */
const EMAIL_RE = new RegExp(
  "^(?:[a-z0-9!#$%&'*+\\x2f=?^_`\\x7b-\\x7d~\\x2d]+(?:\\.[a-z0-9!#$%&'*+\\x2f=?^_`\\x7b-\\x7d~\\x2d]+)*|" +
    '"(?:[\\x01-\\x08\\x0b\\x0c\\x0e-\\x1f\\x21\\x23-\\x5b\\x5d-\\x7f]|\\\\[\\x01-\\x09\\x0b\\x0c\\x0e-\\x7f])*")' +
    "@(?:(?:[a-z0-9](?:[a-z0-9\\x2d]*[a-z0-9])?\\.)+[a-z0-9](?:[a-z0-9\\x2d]*[a-z0-9])?|" +
    "\\[(?:(?:(?:2(?:5[0-5]|[0-4][0-9])|1[0-9][0-9]|[1-9]?[0-9]))\\.){3}(?:(?:2(?:5[0-5]|[0-4][0-9])|1[0-9][0-9]|[1-9]?[0-9])|" +
    "[a-z0-9\\x2d]*[a-z0-9]:(?:[\\x01-\\x08\\x0b\\x0c\\x0e-\\x1f\\x21-\\x5a\\x53-\\x7f]|\\\\[\\x01-\\x09\\x0b\\x0c\\x0e-\\x7f])+)\\])$",
);

/** ISO 8601 duration, `P[n]Y[n]M[n]W[n]DT[n]H[n]M[n]S`. */
const ISO8601_DURATION_RE =
  /^P(?:\d+(?:\.\d+)?Y)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?W)?(?:\d+(?:\.\d+)?D)?(?:T(?:\d+(?:\.\d+)?H)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?S)?)?$/;

/** Runs like `11s 999ms 990us 55ns`, replaced before splitting (they contain spaces). */
const DURATION_RUN_RE =
  /\b\d+(?:ns|us|ms|s|m|h|day|month|year)(?:\s+\d+(?:ns|us|ms|s|m|h|day|month|year))*\b/g;

const RFC3339_RE =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;

const UUID_HYPHENATED =
  /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const UUID_SIMPLE = /^[0-9a-fA-F]{32}$/;

/** Words upstream adds to the system dictionary. */
const EXTRA_WORDS = ["SpamCop"];
/** Acronyms, in lower and upper case. */
const ACRONYMS = ["arc", "bimi", "dkim", "dmarc", "dns", "rbl", "spf", "surbl", "uuid"];

let dictionary: Set<string> | null = null;
let loading: Promise<void> | null = null;

/** Only words shaped like base64 can be mis-tokenized; the rest need not be kept. */
const BASE64_SHAPED = /^(?:[a-zA-Z0-9+/_\-]{4})+$/;

function titlecase(w: string): string {
  return w.length === 0 ? w : w[0].toUpperCase() + w.slice(1);
}

/**
 * Load the dictionary (once). Must have resolved before
 * {@link normalizeSmtpResponse} is called; the `kumo.string` binding awaits it.
 *
 * @example
 * ```ts
 * await loadNormalizerDictionary();
 * normalizeSmtpResponse("250 OK ids=8a5475ccbbc611eda12250ebf67f93bd"); // "250 OK ids={uuid}"
 * ```
 */
export function loadNormalizerDictionary(): Promise<void> {
  if (dictionary) return Promise.resolve();
  loading ??= import("an-array-of-english-words", { with: { type: "json" } }).then((m) => {
    const set = new Set<string>();
    const add = (w: string) => {
      if (BASE64_SHAPED.test(w)) set.add(w);
    };
    for (const w of (m.default as string[]).concat(EXTRA_WORDS)) {
      add(w);
      add(titlecase(w));
    }
    for (const a of ACRONYMS) {
      add(a.toLowerCase());
      add(a.toUpperCase());
    }
    dictionary = set;
  });
  return loading;
}

function dictionaryWord(word: string): string | undefined {
  if (dictionary === null) {
    throw new Error("normalize_smtp_response: the dictionary is not loaded");
  }
  return dictionary.has(word) ? word : undefined;
}

function duration(word: string): string | undefined {
  if (word === "__DURATION__") return "{duration}";
  if (word.startsWith("P") && ISO8601_DURATION_RE.test(word)) return "{duration}";
  return undefined;
}

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function timestamp(word: string): string | undefined {
  const m = RFC3339_RE.exec(word);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
  if (mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || s > 60) {
    return undefined;
  }
  if (m[7] !== undefined && (Number(m[7]) > 23 || Number(m[8]) > 59)) return undefined;
  return "{timestamp}";
}

function uuid(word: string): string | undefined {
  let w = word;
  if (w.length === 45 && w.slice(0, 9).toLowerCase() === "urn:uuid:") w = w.slice(9);
  else if (w.length === 38 && w.startsWith("{") && w.endsWith("}")) w = w.slice(1, -1);
  return UUID_HYPHENATED.test(w) || UUID_SIMPLE.test(w) ? "{uuid}" : undefined;
}

function hash(word: string): string | undefined {
  if (new TextEncoder().encode(word).length < 8) return undefined;
  let alpha = 0;
  let digit = 0;
  for (const c of word) {
    if (/[A-Za-z]/.test(c)) alpha++;
    else if (/[0-9]/.test(c)) digit++;
    else if (c !== "-" && c !== "." && c !== "_") return undefined;
  }
  return alpha > 2 && digit > 2 ? "{hash}" : undefined;
}

function patterns(word: string): string | undefined {
  if (IP_RE.test(word)) return "{ipaddr}";
  if (BASE64_RE.test(word)) return "{base64}";
  if (EMAIL_RE.test(word)) return "{email}";
  return undefined;
}

function compound(word: string): string | undefined {
  const i = word.indexOf("=");
  if (i < 0) return undefined;
  const tok = normalizeWord(word.slice(i + 1));
  return tok === undefined ? undefined : `${word.slice(0, i)}=${tok}`;
}

const FUNCS: Normalizer[] = [dictionaryWord, duration, timestamp, uuid, hash, patterns, compound];

function normalizeWord(word: string): string | undefined {
  for (const f of FUNCS) {
    const r = f(word);
    if (r !== undefined) return r;
  }
  return undefined;
}

const isAsciiWhitespace = (c: string | undefined) =>
  c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f";
const isAsciiPunctuation = (c: string) => /^[!-\/:-@\[-`{-~]$/.test(c);

/** Turn ` [`, ` (`, ` {` into a space, and `]`, `)`, `}` before whitespace/punctuation/end into a space. */
function dropBrackets(s: string): string {
  if (!/[\[({]/.test(s)) return s;
  const chars = [...s];
  let out = "";
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    const next = chars[i + 1];
    if (
      (isAsciiWhitespace(c) || out.length === 0) && (next === "[" || next === "(" || next === "{")
    ) {
      i++;
      out += " ";
      continue;
    }
    if (
      (c === "]" || c === ")" || c === "}") &&
      (next === undefined || isAsciiWhitespace(next) || isAsciiPunctuation(next))
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
 * Normalize one SMTP response text. {@link loadNormalizerDictionary} must
 * have resolved first.
 *
 * @example
 * ```ts
 * await loadNormalizerDictionary();
 * normalizeSmtpResponse("421 4.1.0 10.0.0.1 throttled try later"); // "421 4.1.0 {ipaddr} throttled try later"
 * ```
 */
export function normalizeSmtpResponse(text: string): string {
  const s = dropBrackets(text.replace(DURATION_RUN_RE, "__DURATION__"));
  const out: string[] = [];
  for (const word of s.split(/[ \t\n\r\f]+/)) {
    if (word.length === 0) continue;
    out.push(normalizeWord(word) ?? word);
  }
  return out.join(" ");
}
