/** The page's group picker's choices (pure, so it is tested without a browser). */

import type { Answer } from './api.js';

/** The picker's value for "no group chosen". */
export const ALL = '*';
const NO_GROUP = '(no group)';

/** The groups of the range, the signed-in user's own first (Backstage's ownership refs hold
 * the user's groups), then by title. */
export function groupItems(answer: Answer | undefined, own: string[], selected: string) {
  const mine = new Set(own.map(r => r.toLowerCase()));
  const groups = (answer?.rows ?? [])
    .filter(r => r.group_ref && r.group_ref !== NO_GROUP)
    .map(r => ({ ref: String(r.group_ref), label: `${String(r.title || r.group_ref)}${r.type ? ` (${String(r.type)})` : ''}` }));
  if (selected && !groups.some(g => g.ref === selected)) groups.push({ ref: selected, label: selected });
  groups.sort((a, b) => Number(mine.has(b.ref)) - Number(mine.has(a.ref)) || a.label.localeCompare(b.label));
  return [{ label: 'Everyone', value: ALL }, ...groups.map(g => ({ label: mine.has(g.ref) ? `${g.label} · yours` : g.label, value: g.ref }))];
}

