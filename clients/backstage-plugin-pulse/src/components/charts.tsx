/** The page's charts (recharts: drawn in the browser, nothing fetched from elsewhere). */

import { useTheme } from '@material-ui/core';
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { Answer } from '../api.js';

const HEIGHT = 260;

/** Periods come as ISO dates or date-times; hours keep their time, days drop it. */
function period(value: unknown): string {
  const text = String(value ?? '');
  return text.endsWith(' 00:00:00') || text.endsWith('T00:00:00') ? text.slice(0, 10) : text.slice(0, 16);
}

export function ActiveUsersChart({ answer }: { answer: Answer }) {
  const theme = useTheme();
  const data = answer.rows.map(r => ({ period: period(r.period), users: r.users, sessions: r.sessions }));
  return (
    <ResponsiveContainer width="100%" height={HEIGHT}>
      <LineChart data={data} margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
        <CartesianGrid strokeDasharray="3 3" />
        <XAxis dataKey="period" />
        <YAxis allowDecimals={false} />
        <Tooltip />
        <Legend />
        <Line type="monotone" dataKey="users" name="Active users" stroke={theme.palette.primary.main} strokeWidth={2} isAnimationActive={false} />
        <Line type="monotone" dataKey="sessions" name="Sessions" stroke={theme.palette.secondary.main} isAnimationActive={false} />
      </LineChart>
    </ResponsiveContainer>
  );
}

export function NewVsReturningChart({ answer }: { answer: Answer }) {
  const theme = useTheme();
  const data = answer.rows.map(r => ({ period: period(r.period), new_users: r.new_users, returning_users: r.returning_users }));
  return (
    <ResponsiveContainer width="100%" height={HEIGHT}>
      <BarChart data={data} margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
        <CartesianGrid strokeDasharray="3 3" />
        <XAxis dataKey="period" />
        <YAxis allowDecimals={false} />
        <Tooltip />
        <Legend />
        <Bar dataKey="new_users" name="New" stackId="users" fill={theme.palette.primary.main} isAnimationActive={false} />
        <Bar dataKey="returning_users" name="Returning" stackId="users" fill={theme.palette.secondary.main} isAnimationActive={false} />
      </BarChart>
    </ResponsiveContainer>
  );
}
