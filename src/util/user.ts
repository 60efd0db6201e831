/**
 * `--user`: the account the server runs as.
 *
 * Place on the path: start-up only. Deno cannot switch uid/gid, so the flag
 * is checked rather than acted on: not root → the name must resolve to the
 * current uid; root → the name must be root (switching to another account
 * is refused with a clear error rather than silently running as root).
 *
 * @module
 */

/** Looks a user name up in /etc/passwd; returns its uid or undefined. */
export function lookupUid(name: string): number | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync("/etc/passwd");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f.length > 2) return Number(f[2]);
  }
  if (/^\d+$/.test(name)) return Number(name);
  return undefined;
}

/** Throws an Error explaining why `user` cannot be honoured. */
export function checkUser(user: string | undefined): void {
  if (user === undefined) return;
  const uid = Deno.uid();
  const want = lookupUid(user);
  if (want === undefined) throw new Error(`Cannot run as user "${user}": no such user`);
  if (want === uid) return;
  if (uid === 0) {
    throw new Error(
      `Cannot run as user "${user}": kumo-edge cannot drop root privileges; ` +
        `start it as "${user}" (e.g. systemd User=${user}) instead`,
    );
  }
  throw new Error(`Cannot run as user "${user}": the current uid is ${uid}, not ${want}`);
}
