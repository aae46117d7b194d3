// Aligned plain-text tables and key/value blocks for people (scripts use --json). No colours and no box
// drawing, so the output pastes cleanly into tickets and greps well.

export interface Column<Row> {
  header: string;
  value(row: Row): string | number | null | undefined;
  /** Right-align (numbers). */
  right?: boolean;
  /** Longer cells are cut with "…" (commands, expressions). */
  max?: number;
}

const GAP = "  ";

/** Display width: code points, so "…" and "→" count once. */
export const width = (s: string) => [...s].length;

export function truncate(s: string, max: number): string {
  const chars = [...s];
  return chars.length <= max ? s : `${chars.slice(0, Math.max(0, max - 1)).join("")}…`;
}

function cell(v: string | number | null | undefined): string {
  if (v === null || v === undefined || v === "") return "-";
  // A cell is one line: newlines and tabs in names or messages would break the columns.
  return String(v).replace(/[\r\n\t]+/g, " ");
}

/** Renders rows under upper-case headers; every line ends with "\n", none with trailing spaces. */
export function renderTable<Row>(columns: Column<Row>[], rows: Row[]): string {
  const cells = rows.map((r) =>
    columns.map((c) => {
      const text = cell(c.value(r));
      return c.max ? truncate(text, c.max) : text;
    }),
  );
  const headers = columns.map((c) => c.header.toUpperCase());
  const widths = columns.map((_, i) => Math.max(width(headers[i]!), ...cells.map((r) => width(r[i]!))));
  const line = (values: string[]) =>
    values
      .map((v, i) => {
        const fill = " ".repeat(widths[i]! - width(v));
        return columns[i]!.right ? fill + v : i === values.length - 1 ? v : v + fill;
      })
      .join(GAP)
      .trimEnd();
  return `${[line(headers), ...cells.map(line)].join("\n")}\n`;
}

/**
 * "Key:   value" lines with the values aligned; entries with an undefined value are left out, and an empty
 * key continues the entry above.
 */
export function renderKeyValues(entries: [string, string | number | null | undefined][]): string {
  const shown = entries.filter(([, v]) => v !== undefined);
  const w = Math.max(0, ...shown.map(([k]) => width(k))) + 1;
  return shown
    .map(([k, v]) => {
      const text = v === null || v === "" ? "-" : String(v);
      // Continuation lines of a multi-line value line up under the first.
      const indented = text.split("\n").join(`\n${" ".repeat(w + GAP.length)}`);
      return `${(k ? `${k}:` : "").padEnd(w)}${GAP}${indented}\n`;
    })
    .join("");
}
