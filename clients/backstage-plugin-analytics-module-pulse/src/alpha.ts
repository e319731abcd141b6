/** The new frontend system: an analytics implementation extension and a module holding it. */

import { coreApis, createFrontendModule } from '@backstage/frontend-plugin-api';
import { AnalyticsImplementationBlueprint } from '@backstage/plugin-app-react';
import { PulseAnalytics } from './PulseAnalytics.js';

export const pulseAnalyticsImplementation = AnalyticsImplementationBlueprint.make({
  name: 'pulse',
  params: define =>
    define({
      deps: { config: coreApis.config, identity: coreApis.identity, fetch: coreApis.fetch, discovery: coreApis.discovery, storage: coreApis.storage },
      factory: ({ config, identity, fetch, discovery, storage }) =>
        PulseAnalytics.fromConfig(config, { identityApi: identity, fetchApi: fetch, discoveryApi: discovery, storageApi: storage, frontendSystem: 'NEW' }),
    }),
});

/** `createApp({ features: [analyticsModulePulse] })`, or discovered by the app automatically. */
export const analyticsModulePulse = createFrontendModule({
  pluginId: 'app',
  extensions: [pulseAnalyticsImplementation],
});

export default analyticsModulePulse;
