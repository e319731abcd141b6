/**
 * Pulse's insights for Backstage's backend: the saved questions behind Backstage's own auth and
 * the `pulse.insights.read` permission.
 *
 * @packageDocumentation
 */

export { pulsePlugin as default } from './plugin';
export { pulseErasePermission, pulseInsightsReadPermission, pulsePermissions } from './permissions';
