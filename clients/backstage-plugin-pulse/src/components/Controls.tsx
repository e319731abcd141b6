/** The page's range, grouping, instance and group pickers. */

import { Select } from '@backstage/core-components';
import { identityApiRef, useApi } from '@backstage/core-plugin-api';
import { Box } from '@material-ui/core';
import type { Grouping } from '../api.js';
import { ALL, groupItems } from '../groups.js';
import { useAnswer, useLoad } from './useAnswer.js';

export const RANGES = [
  { label: 'Last 24 hours', value: '24h' },
  { label: 'Last 7 days', value: '7d' },
  { label: 'Last 30 days', value: '30d' },
  { label: 'Last 90 days', value: '90d' },
];

export const GROUPINGS: { label: string; value: Exclude<Grouping, 'total'> }[] = [
  { label: 'Hour', value: 'hour' },
  { label: 'Day', value: 'day' },
  { label: 'Week', value: 'week' },
  { label: 'Month', value: 'month' },
];


export interface Selection {
  since: string;
  group: Exclude<Grouping, 'total'>;
  instance: string;
  /** A group's ref: every card shows its members' use; empty for everyone. */
  team: string;
}

export function Controls({ selection, onChange }: { selection: Selection; onChange: (s: Selection) => void }) {
  const { state } = useAnswer('instances', { since: selection.since, limit: 100 });
  const instances = state.status === 'ready' ? state.answer.rows.map(r => String(r.instance_id)) : [];
  const teams = useAnswer('teams', { since: selection.since, group_by: 'total', limit: 1000 }).state;
  const identity = useApi(identityApiRef);
  const own = useLoad('identity', async () => (await identity.getBackstageIdentity()).ownershipEntityRefs).state;
  const groups = groupItems(teams.status === 'ready' ? teams.answer : undefined, own.status === 'ready' ? own.value : [], selection.team);
  if (selection.instance && !instances.includes(selection.instance)) instances.push(selection.instance);
  return (
    <Box display="flex" flexWrap="wrap" style={{ gap: 16 }}>
      <Select label="Range" items={RANGES} selected={selection.since} onChange={v => onChange({ ...selection, since: String(v) })} />
      <Select
        label="Grouping"
        items={GROUPINGS}
        selected={selection.group}
        onChange={v => onChange({ ...selection, group: v as Selection['group'] })}
      />
      <Select
        label="Instance"
        items={[{ label: 'All instances', value: ALL }, ...instances.map(i => ({ label: i, value: i }))]}
        selected={selection.instance || ALL}
        onChange={v => onChange({ ...selection, instance: v === ALL ? '' : String(v) })}
      />
      <Select label="Group" items={groups} selected={selection.team || ALL} onChange={v => onChange({ ...selection, team: v === ALL ? '' : String(v) })} />
    </Box>
  );
}
