/** Sent as the envelope's `collector`, so analysts can tell module versions apart. */
export const MODULE_NAME = 'backstage-plugin-analytics-module-pulse';
export const MODULE_VERSION = '0.1.0';
