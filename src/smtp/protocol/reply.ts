/**
 * SMTP replies: the data type, the wire formatter (server side), the error
 * that carries its own reply, and an incremental reply parser (client side).
 *
 * Place on the mail's path: shared by `smtp/server/` (every reply goes
 * through {@link formatReply}) and `smtp/client/` (every server answer comes
 * out of {@link ReplyParser}). It never touches sockets: bytes in, data out.
 *
 * Wire format: RFC 5321 §4.2 (`NNN-` continuation, `NNN ` on the last line);
 * enhanced status codes: RFC 3463 / RFC 2034, recognised as in logs.md §1.1.
 *
 * @module
 */

/** RFC 3463 enhanced status code `class.subject.detail`. */
export interface EnhancedCode {
  class: number;
  subject: number;
  detail: number;
}

/**
 * One SMTP reply. `text` is the content without the code and without the
 * enhanced code (which is in `enhanced`); lines of a multi-line reply are
 * joined with `\n`.
 */
export interface SmtpReply {
  code: number;
  enhanced?: EnhancedCode;
  text: string;
}

const ENHANCED_RE = /^([245])\.(\d{1,3})\.(\d{1,3}) /;

/**
 * Parse the enhanced status code at the start of a reply's first line: only
 * when it starts with `C.S.D ` (trailing space required) and C is 2, 4 or 5.
 *
 * @example
 * ```ts
 * parseEnhancedCode("5.7.1 relaying denied"); // { class: 5, subject: 7, detail: 1 }
 * parseEnhancedCode("relaying denied"); // null
 * ```
 */
export function parseEnhancedCode(text: string): EnhancedCode | null {
  const m = ENHANCED_RE.exec(text);
  if (m === null) return null;
  return { class: Number(m[1]), subject: Number(m[2]), detail: Number(m[3]) };
}

/** Render an enhanced code as `C.S.D`. */
export function formatEnhancedCode(e: EnhancedCode): string {
  return `${e.class}.${e.subject}.${e.detail}`;
}

/**
 * Build a reply from a code and wire text that may start with an enhanced
 * code: `replyFromText(550, "5.7.1 relaying not permitted")`.
 *
 * @example
 * ```ts
 * replyFromText(550, "5.7.1 no"); // { code: 550, enhanced: {class:5,subject:7,detail:1}, text: "no" }
 * ```
 */
export function replyFromText(code: number, text: string): SmtpReply {
  const m = ENHANCED_RE.exec(text);
  if (m === null) return { code, text };
  return {
    code,
    enhanced: { class: Number(m[1]), subject: Number(m[2]), detail: Number(m[3]) },
    text: text.slice(m[0].length),
  };
}

/**
 * Format a reply for the wire: `text` split on `\n` (a trailing `\r` per
 * line is dropped), `NNN-` on all lines but the last, `NNN ` on the last,
 * each ending in CRLF. Returns one string so the caller writes it in one go.
 *
 * @example
 * ```ts
 * formatReply(250, "mx.test Aloha c\nPIPELINING"); // "250-mx.test Aloha c\r\n250 PIPELINING\r\n"
 * ```
 */
export function formatReply(code: number, text: string): string {
  if (text.indexOf("\n") < 0) return `${code} ${text}\r\n`;
  const lines = text.split("\n");
  let out = "";
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i];
    if (line.endsWith("\r")) line = line.slice(0, -1);
    out += `${code}${i === lines.length - 1 ? " " : "-"}${line}\r\n`;
  }
  return out;
}

/**
 * Format an {@link SmtpReply}; the enhanced code, if any, is put at the start
 * of every line (RFC 2034 §4).
 *
 * @example
 * ```ts
 * formatSmtpReply({ code: 552, enhanced: { class: 5, subject: 3, detail: 4 }, text: "message too big" });
 * // "552 5.3.4 message too big\r\n"
 * ```
 */
export function formatSmtpReply(reply: SmtpReply): string {
  if (reply.enhanced === undefined) return formatReply(reply.code, reply.text);
  const prefix = `${formatEnhancedCode(reply.enhanced)} `;
  if (reply.text.indexOf("\n") < 0) return `${reply.code} ${prefix}${reply.text}\r\n`;
  return formatReply(reply.code, prefix + reply.text.split("\n").join(`\n${prefix}`));
}

/** The reply as one log-friendly line: `NNN C.S.D text` with line breaks as spaces. */
export function replyToString(reply: SmtpReply): string {
  const e = reply.enhanced ? ` ${formatEnhancedCode(reply.enhanced)}` : "";
  return `${reply.code}${e} ${reply.text.replace(/\r?\n/g, " ")}`;
}

/**
 * An error that carries its own SMTP reply, written by the server's one
 * writer. Both forms are accepted:
 * `new SmtpError(550, "5.7.1 relaying not permitted")` and
 * `new SmtpError(550, "5.7.1", "relaying not permitted")`.
 * A 421 reply closes the connection ({@link SmtpError.closesConnection}).
 *
 * @example
 * ```ts
 * throw new SmtpError(452, "4.5.3 too many recipients");
 * ```
 */
export class SmtpError extends Error {
  /** The reply to send. */
  readonly reply: SmtpReply;
  constructor(code: number, text: string, textAfterEnhanced?: string) {
    const reply = textAfterEnhanced === undefined
      ? replyFromText(code, text)
      : replyFromText(code, `${text} ${textAfterEnhanced}`);
    super(replyToString(reply));
    this.name = "SmtpError";
    this.reply = reply;
  }
  /** The reply code. */
  get code(): number {
    return this.reply.code;
  }
  /** True for 421: the server closes the connection after sending it. */
  get closesConnection(): boolean {
    return this.reply.code === 421;
  }
  /** The reply as wire text (CRLF-terminated). */
  toWire(): string {
    return formatSmtpReply(this.reply);
  }
}

/** The peer sent something that is not an SMTP reply. */
export class ReplySyntaxError extends SyntaxError {
  /** The offending line (truncated to 200 characters). */
  readonly line: string;
  constructor(line: string, reason: string) {
    const shown = line.length > 200 ? line.slice(0, 200) + "…" : line;
    super(`Cannot parse SMTP reply ${JSON.stringify(shown)}: ${reason}`);
    this.name = "ReplySyntaxError";
    this.line = shown;
  }
}

/** Options for {@link ReplyParser}. */
export interface ReplyParserOptions {
  /**
   * Longest reply line accepted, and longest multi-line reply in total (characters).
   * @default 65536
   */
  maxLength?: number;
}

/**
 * Incremental reply parser for the SMTP client: feed it whatever the socket
 * delivers (several pipelined replies in one chunk, or a reply split
 * mid-line) and it returns the replies completed so far, in order.
 * Lines may end in CRLF or a bare LF.
 *
 * @example
 * ```ts
 * const p = new ReplyParser();
 * p.feed("250-mx.test\r\n250 PIPE"); // []
 * p.feed("LINING\r\n"); // [{ code: 250, text: "mx.test\nPIPELINING" }]
 * ```
 */
export class ReplyParser {
  #decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  #buf = "";
  #lines: string[] = [];
  #code = 0;
  #size = 0;
  #max: number;

  constructor(options: ReplyParserOptions = {}) {
    this.#max = options.maxLength ?? 65536;
  }

  /** True when part of a reply has been received but not yet completed. */
  get pending(): boolean {
    return this.#buf.length > 0 || this.#lines.length > 0;
  }

  /**
   * Add received bytes; returns every reply completed by them.
   * @throws {ReplySyntaxError} on a line that is not `NNN[ -]text`, or one over the length cap.
   */
  feed(chunk: Uint8Array | string): SmtpReply[] {
    const s = typeof chunk === "string" ? chunk : this.#decoder.decode(chunk, { stream: true });
    this.#buf = this.#buf.length === 0 ? s : this.#buf + s;
    const out: SmtpReply[] = [];
    let pos = 0;
    const buf = this.#buf;
    for (;;) {
      const lf = buf.indexOf("\n", pos);
      if (lf < 0) break;
      const end = lf > pos && buf.charCodeAt(lf - 1) === 13 ? lf - 1 : lf;
      const reply = this.#line(buf.slice(pos, end));
      if (reply !== null) out.push(reply);
      pos = lf + 1;
    }
    this.#buf = pos === 0 ? buf : buf.slice(pos);
    if (this.#buf.length > this.#max) {
      throw new ReplySyntaxError(this.#buf, "line too long");
    }
    return out;
  }

  #line(line: string): SmtpReply | null {
    const c0 = line.charCodeAt(0) - 48, c1 = line.charCodeAt(1) - 48, c2 = line.charCodeAt(2) - 48;
    if (
      !(c0 >= 2 && c0 <= 5 && c1 >= 0 && c1 <= 9 && c2 >= 0 && c2 <= 9) ||
      (line.length > 3 && line[3] !== " " && line[3] !== "-")
    ) {
      this.#lines = [];
      throw new ReplySyntaxError(line, "expected a 3-digit code");
    }
    const code = c0 * 100 + c1 * 10 + c2;
    if (this.#lines.length === 0) this.#code = code;
    // A mismatched code on a continuation line is tolerated: the first line's code wins.
    const text = line.length > 4 ? line.slice(4) : "";
    this.#lines.push(text);
    this.#size += text.length + 1;
    if (this.#size > this.#max) {
      this.#lines = [];
      this.#size = 0;
      throw new ReplySyntaxError(line, "multi-line reply too long");
    }
    if (line[3] === "-") return null;

    const lines = this.#lines;
    this.#lines = [];
    this.#size = 0;
    const reply = replyFromText(this.#code, lines[0]);
    if (lines.length === 1) return reply;
    if (reply.enhanced !== undefined) {
      // Strip the same enhanced code repeated on continuation lines (RFC 2034 §4).
      const prefix = `${formatEnhancedCode(reply.enhanced)} `;
      for (let i = 1; i < lines.length; i++) {
        if (lines[i].startsWith(prefix)) lines[i] = lines[i].slice(prefix.length);
      }
    }
    lines[0] = reply.text;
    reply.text = lines.join("\n");
    return reply;
  }
}
