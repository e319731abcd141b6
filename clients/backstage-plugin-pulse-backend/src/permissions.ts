/** The permission to read Pulse's insights; a permission policy decides who holds it. */

import { createPermission } from '@backstage/plugin-permission-common';

export const pulseInsightsReadPermission = createPermission({
  name: 'pulse.insights.read',
  attributes: { action: 'read' },
});

/** The permission to erase a person from Pulse (their events, dead letters and their share of
 * the rollups, for good); a permission policy gives it to Backstage's admins. */
export const pulseErasePermission = createPermission({
  name: 'pulse.people.erase',
  attributes: { action: 'delete' },
});

export const pulsePermissions = [pulseInsightsReadPermission, pulseErasePermission];
