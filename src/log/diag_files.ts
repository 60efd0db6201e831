/**
 * `--diag-log-dir`: diagnostic output to hourly files `log.YYYY-MM-DD-HH`.
 *
 * Place on the path: beside it (diagnostics). Synchronous appends: the
 * diagnostic logger already batches per tick.
 *
 * @module
 */

function hourName(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `log.${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}-${
    p(d.getUTCHours())
  }`;
}

/** A writer for DiagLogger.setWriter appending to DIR/log.<hour>. */
export function hourlyFileWriter(dir: string): (text: string) => void {
  Deno.mkdirSync(dir, { recursive: true });
  const enc = new TextEncoder();
  return (text: string) => {
    Deno.writeFileSync(`${dir}/${hourName(Date.now())}`, enc.encode(text), { append: true });
  };
}
