/** Pulse's insights page for Backstage. The legacy frontend system's plugin is here; the new
 * system's is the `/alpha` entry point. */

export { pulsePlugin, PulsePage, rootRouteRef } from './plugin.js';
export { PulseClient, PulseError, pulseApiRef } from './api.js';
/** The opt-out switch, also for a place of the app's choosing (e.g. its settings page). */
export { OptOut as PulseOptOutSwitch } from './components/OptOut.js';
export type { Answer, Catalogue, Cell, Grouping, PulseApi, PulseErrorKind, QuestionParams } from './api.js';
