/**
 * Plain-text tables for kcli output: a header row, columns padded to the
 * widest cell, numbers right-aligned.
 *
 * Place: admin client output, outside the mail's path.
 *
 * @module
 */

/**
 * Render rows under `header`.
 *
 * @example
 * ```ts
 * renderTable(["ID", "REASON"], [["1", "bad list"]]);
 * // "ID  REASON\n1   bad list\n"
 * ```
 */
export function renderTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const numeric = header.map((_, i) =>
    rows.length > 0 && rows.every((r) => /^\d+$/.test(r[i] ?? ""))
  );
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => {
      const last = i === cells.length - 1;
      if (numeric[i]) return c.padStart(widths[i]);
      return last ? c : c.padEnd(widths[i]);
    }).join("  ").trimEnd() + "\n";
  return line(header) + rows.map(line).join("");
}
