/**
 * Quoted-printable encoding (RFC 2045 §6.7) for the places that write MIME:
 * the inject API's leaf parts, generated DSNs (rfc3464_report.ts) and
 * `msg:check_fix_conformance`'s transfer-encoding fix.
 *
 * Place on the path: a helper; imports nothing. Pure.
 *
 * @module
 */

const HEX = "0123456789ABCDEF";

/**
 * Quoted-printable (RFC 2045 §6.7) of text whose line breaks are CRLF:
 * line breaks stay hard breaks, trailing whitespace is encoded, soft breaks
 * keep lines within 76 characters.
 *
 * @example
 * ```ts
 * quotedPrintable(new TextEncoder().encode("café\r\n")); // "caf=C3=A9\r\n"
 * ```
 */
export function quotedPrintable(bytes: Uint8Array): string {
  let out = "";
  let line = "";
  const emit = (tok: string) => {
    if (line.length + tok.length > 75) {
      out += line + "=\r\n";
      line = "";
    }
    line += tok;
  };
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0x0d && bytes[i + 1] === 0x0a) {
      out += line + "\r\n";
      line = "";
      i++;
      continue;
    }
    const next = bytes[i + 1];
    const atLineEnd = next === undefined || (next === 0x0d && bytes[i + 2] === 0x0a);
    if (
      (b >= 33 && b <= 126 && b !== 61) ||
      ((b === 0x20 || b === 0x09) && !atLineEnd)
    ) {
      emit(String.fromCharCode(b));
    } else {
      emit("=" + HEX[b >> 4] + HEX[b & 15]);
    }
  }
  if (line !== "") out += line + "=\r\n";
  return out;
}
