/** Plain-text tables for `meshreg ctl`: a header row, aligned columns, no borders. */

/** Renders `rows` with the given columns, each a field of the rows (missing values print as empty). */
export function renderTable<R extends object>(
  rows: readonly R[],
  columns: readonly (keyof R & string)[],
): string {
  const cell = (v: unknown): string => {
    if (v === undefined || v === null) return '';
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    return JSON.stringify(v);
  };
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
