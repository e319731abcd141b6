/** An answer's rows as a table, numbers right-aligned and formatted for the reader's locale. */

import { Table, TableBody, TableCell, TableHead, TableRow } from '@material-ui/core';
import type { Answer, Cell } from '../api.js';

export interface Column {
  name: string;
  label: string;
  numeric?: boolean;
}

const NUMBER = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

export function formatCell(value: Cell, numeric?: boolean): string {
  if (value === null || value === '') return '—';
  return numeric && typeof value === 'number' ? NUMBER.format(value) : String(value);
}

/** A cell as the page shows it: `<5` where Pulse withheld it (a figure about fewer than the
 * minimum group size), else the value. */
export function shownCell(answer: Answer, row: Record<string, Cell>, column: string, numeric?: boolean): string {
  const withheld = row.withheld;
  if (Array.isArray(withheld) && withheld.includes(column)) return `<${answer.min_group_size ?? 5}`;
  return formatCell(row[column] ?? null, numeric);
}

export function AnswerTable({ answer, columns }: { answer: Answer; columns: Column[] }) {
  return (
    <Table size="small" aria-label={answer.title}>
      <TableHead>
        <TableRow>
          {columns.map(c => (
            <TableCell key={c.name} align={c.numeric ? 'right' : 'left'}>
              {c.label}
            </TableCell>
          ))}
        </TableRow>
      </TableHead>
      <TableBody>
        {answer.rows.map((row, i) => (
          <TableRow key={i}>
            {columns.map(c => (
              <TableCell key={c.name} align={c.numeric ? 'right' : 'left'}>
                {shownCell(answer, row, c.name, c.numeric)}
              </TableCell>
            ))}
          </TableRow>
        ))}
      </TableBody>
    </Table>
  );
}
