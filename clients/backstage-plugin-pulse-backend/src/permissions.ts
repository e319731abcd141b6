/** The permission to read Pulse's insights; a permission policy decides who holds it. */

import { createPermission } from '@backstage/plugin-permission-common';

export const pulseInsightsReadPermission = createPermission({
  name: 'pulse.insights.read',
  attributes: { action: 'read' },
});

export const pulsePermissions = [pulseInsightsReadPermission];
