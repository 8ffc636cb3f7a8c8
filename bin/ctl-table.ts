/** Plain-text tables for `meshreg ctl`: a header row, aligned columns, no borders. */

/** Renders `rows` with the given columns (missing values print as empty). */
export function renderTable(rows: readonly Record<string, unknown>[], columns: readonly string[]): string {
  const cell = (v: unknown): string =>
    v === undefined || v === null
      ? ''
      : typeof v === 'object'
        ? JSON.stringify(v)
        : String(v);
  const table = [columns.map((c) => c.toUpperCase()), ...rows.map((r) => columns.map((c) => cell(r[c])))];
  const widths = columns.map((_, i) => Math.max(...table.map((row) => (row[i] ?? '').length)));
  return table
    .map((row) =>
      row
        .map((v, i) => v.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
