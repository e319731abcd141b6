/** "Adoption by team": each group's members (at the end of the range), active members and
 * adoption % as a bar; figures Pulse withheld (about fewer than the minimum group size) show
 * as `<5` without a bar. */

import { Box, Table, TableBody, TableCell, TableHead, TableRow, Typography, useTheme } from '@material-ui/core';
import type { Answer, Cell } from '../api.js';
import { shownCell } from './AnswerTable.js';

function Bar({ answer, row }: { answer: Answer; row: Record<string, Cell> }) {
  const theme = useTheme();
  const value = row.adoption;
  const text = shownCell(answer, row, 'adoption', true);
  const width = typeof value === 'number' ? Math.max(0, Math.min(100, value)) : 0;
  return (
    <Box display="flex" alignItems="center" style={{ gap: 8 }}>
      <Box flexGrow={1} height={10} bgcolor={theme.palette.action.hover} borderRadius={4} aria-hidden>
        <Box height={10} width={`${width}%`} bgcolor={theme.palette.primary.main} borderRadius={4} />
      </Box>
      <Typography variant="body2" style={{ minWidth: 48, textAlign: 'right' }} data-adoption={String(row.group_ref)}>
        {text === '—' ? '—' : typeof value === 'number' ? `${text}%` : text}
      </Typography>
    </Box>
  );
}

export function AdoptionTable({ answer }: { answer: Answer }) {
  return (
    <Table size="small" aria-label="Adoption by team">
      <TableHead>
        <TableRow>
          <TableCell>Group</TableCell>
          <TableCell align="right">Members</TableCell>
          <TableCell align="right">Active</TableCell>
          <TableCell style={{ width: '40%' }}>Adoption</TableCell>
        </TableRow>
      </TableHead>
      <TableBody>
        {answer.rows.map(row => (
          <TableRow key={String(row.group_ref)} data-group={String(row.group_ref)}>
            <TableCell>
              <Typography variant="body2">{String(row.title || row.group_ref)}</Typography>
              <Typography variant="caption" color="textSecondary">
                {String(row.type || '')}
              </Typography>
            </TableCell>
            <TableCell align="right">{shownCell(answer, row, 'members', true)}</TableCell>
            <TableCell align="right">{shownCell(answer, row, 'active_users', true)}</TableCell>
            <TableCell>
              <Bar answer={answer} row={row} />
            </TableCell>
          </TableRow>
        ))}
      </TableBody>
    </Table>
  );
}
