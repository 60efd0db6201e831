/**
 * Errors that come out of policy events.
 *
 * Place on the path: policy. {@linkcode PolicyReject} is `kumo.reject` /
 * `kumo.disconnect`: it carries the reply the SMTP server must send.
 * {@linkcode PolicyError} is any other Lua error: its message already names
 * file and line; the traceback is for the diagnostic log, never the peer.
 *
 * @module
 */

/** `kumo.reject(code, message)` or `kumo.disconnect(...)` from a handler. */
export class PolicyReject extends Error {
  readonly code: number;
  readonly text: string;
  /** `reject`, `ForceDisconnect`, `FollowWith421` or `If421`. */
  readonly how: string;
  constructor(code: number, text: string, how = "reject") {
    super(`${code} ${text}`);
    this.name = "PolicyReject";
    this.code = code;
    this.text = text;
    this.how = how;
  }

  /** Whether the connection must be closed after the reply. */
  get disconnect(): boolean {
    if (this.how === "reject" || this.how === "If421") return this.code === 421;
    return true;
  }
}

/** A Lua error raised while loading the policy or running a handler. */
export class PolicyError extends Error {
  readonly traceback: string;
  constructor(message: string, traceback = message) {
    super(message);
    this.name = "PolicyError";
    this.traceback = traceback;
  }
}
