/**
 * SMTP AUTH PLAIN (RFC 4954, RFC 4616) and AUTH LOGIN for the inbound
 * session: decoding the client's responses and interpreting what
 * `smtp_server_auth_plain` returned.
 *
 * Place on the mail's path: the session's AUTH handler checks the
 * preconditions (TLS, not twice, not in a transaction, mechanism PLAIN or
 * LOGIN), gets the responses (initial response or after `334`
 * continuations), then uses these helpers. LOGIN is a deliberate extension
 * over upstream (issue 3 asks for it): `334 VXNlcm5hbWU6` ("Username:"),
 * `334 UGFzc3dvcmQ6` ("Password:"), and the credentials go to the same
 * `smtp_server_auth_plain` handler as PLAIN with an empty authz (so authz =
 * authc). Every other mechanism gets `504 5.5.4 AUTH <mech> not supported`.
 * Pure functions: never calls Lua or writes replies.
 *
 * @module
 */

/** The mechanisms offered after STARTTLS, in EHLO order. */
export const AUTH_MECHANISMS = ["PLAIN", "LOGIN"] as const;

/** Decoded PLAIN credentials; an empty authz is already replaced by authc. */
export interface PlainCredentials {
  authz: string;
  authc: string;
  password: string;
}

/** The exact replies of the AUTH command (lua-api.md §9). */
export const AUTH_REPLIES = {
  ok: { code: 235, text: "2.7.0 AUTH OK!" },
  invalid: { code: 535, text: "5.7.8 AUTH invalid" },
  twice: { code: 503, text: "5.5.1 AUTH me once, can't get authed again!" },
  inTransaction: { code: 503, text: "5.5.1 AUTH not permitted inside a transaction" },
  cancelled: { code: 501, text: "5.7.0 AUTH cancelled" },
  badBase64: { code: 501, text: "5.5.2 Invalid base64 in AUTH response" },
  badPlain: { code: 501, text: "5.5.2 Invalid AUTH PLAIN response" },
  badLogin: { code: 501, text: "5.5.2 Invalid AUTH LOGIN response" },
  /** AUTH LOGIN: base64 of `Username:`. */
  loginUsername: { code: 334, text: "VXNlcm5hbWU6" },
  /** AUTH LOGIN: base64 of `Password:`. */
  loginPassword: { code: 334, text: "UGFzc3dvcmQ6" },
} as const;

/** `524 5.7.11 AUTH <mech> requires an encrypted channel` (PLAIN for unknown mechanisms). */
export function needTls(mech: string): { code: number; text: string } {
  const m = mech === "LOGIN" ? "LOGIN" : "PLAIN";
  return { code: 524, text: `5.7.11 AUTH ${m} requires an encrypted channel` };
}

/** `504 5.5.4 AUTH <mech> not supported`. */
export function unsupportedMechanism(mech: string): { code: number; text: string } {
  return { code: 504, text: `5.5.4 AUTH ${mech} not supported` };
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Decode a base64 PLAIN response (`authz NUL authc NUL password`); `=`
 * means empty. Returns a reply key on bad input.
 *
 * @example
 * ```ts
 * decodePlain(btoa("\0user\0pw")); // { authz: "user", authc: "user", password: "pw" }
 * ```
 */
export function decodePlain(b64: string): PlainCredentials | "badBase64" | "badPlain" {
  const text = decodeAuthText(b64);
  if (text === undefined) return "badBase64";
  if (text === null) return "badPlain";
  const parts = text.split("\0");
  if (parts.length !== 3 || parts[1] === "") return "badPlain";
  return { authz: parts[0] === "" ? parts[1] : parts[0], authc: parts[1], password: parts[2] };
}

/**
 * A SASL response (RFC 4954 §4): base64 (a lone "=" is empty) of UTF-8
 * text; undefined when not base64, null when not UTF-8.
 */
function decodeAuthText(b64: string): string | null | undefined {
  let bin: string;
  try {
    bin = b64 === "=" ? "" : atob(b64);
  } catch {
    return undefined;
  }
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * Decode one AUTH LOGIN response (username or password): base64 of UTF-8
 * text without NUL. The username must not be empty.
 *
 * @example
 * ```ts
 * decodeLoginField(btoa("alice"), "username"); // "alice"
 * ```
 */
export function decodeLoginField(
  b64: string,
  field: "username" | "password",
): { value: string } | "badBase64" | "badLogin" {
  const text = decodeAuthText(b64);
  if (text === undefined) return "badBase64";
  if (text === null) return "badLogin";
  if (text.includes("\0") || (field === "username" && text === "")) return "badLogin";
  return { value: text };
}

/** What `smtp_server_auth_plain` decided. */
export type AuthVerdict =
  | { ok: false }
  | { ok: true; authInfo?: unknown };

/**
 * Interpret the handler's return value: `true`/`false`, or an AuthInfo
 * table `{identities = {...}, groups = {...}}` (success).
 *
 * @throws {TypeError} for `nil` or anything else (an error per lua-api.md §4.3).
 */
export function authVerdict(value: unknown): AuthVerdict {
  if (value === true) return { ok: true };
  if (value === false) return { ok: false };
  if (typeof value === "object" && value !== null && "identities" in value) {
    return { ok: true, authInfo: value };
  }
  throw new TypeError(
    `smtp_server_auth_plain: expected a boolean or AuthInfo, got ${JSON.stringify(value) ?? "nil"}`,
  );
}
