// Benchmark tables: aligned Markdown (readable in a terminal, pastable into docs), number
// formats, and the ratio column that sets each figure against a baseline row measured in the same
// run. A missing figure is NaN or null and prints as an em dash, never as 0.

export interface Column {
  header: string;
  /** Numbers right, text left (the default). */
  align?: 'left' | 'right';
}

const MISSING = '—';

function isMissing(value: number | null | undefined): value is null | undefined {
  return value === null || value === undefined || !Number.isFinite(value);
}

/** Display width: code points, so "×" and "—" count as one column. */
function width(text: string): number {
  return [...text].length;
}

function pad(text: string, size: number, align: 'left' | 'right'): string {
  const fill = ' '.repeat(Math.max(0, size - width(text)));
  return align === 'right' ? fill + text : text + fill;
}

/** An aligned Markdown table; rows shorter than the header are padded with empty cells. */
export function formatTable(
  columns: readonly Column[],
  rows: readonly (readonly string[])[],
): string {
  const widths = columns.map((column, i) =>
    Math.max(3, width(column.header), ...rows.map((row) => width(row[i] ?? ''))),
  );
  const line = (cells: readonly string[]): string =>
    `| ${columns.map((column, i) => pad(cells[i] ?? '', widths[i], column.align ?? 'left')).join(' | ')} |`;
  const rule = `|${columns
    .map((column, i) =>
      column.align === 'right' ? `${'-'.repeat(widths[i] + 1)}:` : '-'.repeat(widths[i] + 2),
    )
    .join('|')}|`;
  return [line(columns.map((column) => column.header)), rule, ...rows.map(line)].join('\n');
}

/** An integer with thousands separators: 25312 → "25,312". */
export function formatCount(value: number | null | undefined): string {
  if (isMissing(value)) return MISSING;
  return Math.round(value).toLocaleString('en-US');
}

/** A number with thousands separators and exactly `digits` decimals: (1234.5, 1) → "1,234.5". */
export function formatFixed(value: number | null | undefined, digits = 0): string {
  if (isMissing(value)) return MISSING;
  return value.toLocaleString('en-US', {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

/** Milliseconds: two decimals under 10, one under 100, none above. */
export function formatMs(value: number | null | undefined): string {
  if (isMissing(value)) return MISSING;
  if (value < 10) return value.toFixed(2);
  if (value < 100) return value.toFixed(1);
  return value.toFixed(0);
}

/** A CPU share in % of one core: 93.4 → "93%". */
export function formatPct(value: number | null | undefined): string {
  if (isMissing(value)) return MISSING;
  return `${value.toFixed(0)}%`;
}

/** value / baseline as "1.23×"; a dash when either is missing or the baseline is 0. */
export function formatRatio(
  value: number | null | undefined,
  baseline: number | null | undefined,
): string {
  if (isMissing(value) || isMissing(baseline) || baseline === 0) return MISSING;
  const ratio = value / baseline;
  return `${ratio < 10 ? ratio.toFixed(2) : ratio.toFixed(1)}×`;
}
