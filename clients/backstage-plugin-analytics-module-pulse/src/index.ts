/**
 * Ships Backstage plugin analytics events to a Pulse collector.
 *
 * Legacy frontend system: register {@link PulseAnalytics} as the `analyticsApiRef` factory.
 * New frontend system: install the module from `./alpha`.
 *
 * @packageDocumentation
 */

export { PulseAnalytics, type PulseAnalyticsDeps } from './PulseAnalytics.js';
export { readOptions, PulseConfigError, DEFAULTS, type PulseOptions, type IdentityMode, type UserIdTransform } from './options.js';
export type { ShipperStats } from './shipper.js';
export { OPT_OUT_BUCKET, OPT_OUT_KEY, type OptOutMode, type PreferenceStorage } from './privacy.js';
export type { BrowserEnvironment } from './environment.js';
export { MODULE_NAME, MODULE_VERSION } from './version.js';
