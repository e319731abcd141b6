// The registration snippets of docs/backstage.md, type-checked against Backstage's own types (npm test
// runs tsc on this file; it is not executed).

import {
  analyticsApiRef,
  configApiRef,
  createApiFactory,
  discoveryApiRef,
  fetchApiRef,
  identityApiRef,
  storageApiRef,
} from '@backstage/core-plugin-api';
import type { FrontendFeature } from '@backstage/frontend-plugin-api';
import analyticsModulePulse from '../src/alpha.js';
import { PulseAnalytics } from '../src/index.js';

export const legacyApis = [
  createApiFactory({
    api: analyticsApiRef,
    deps: { configApi: configApiRef, identityApi: identityApiRef, fetchApi: fetchApiRef, discoveryApi: discoveryApiRef, storageApi: storageApiRef },
    factory: ({ configApi, identityApi, fetchApi, discoveryApi, storageApi }) =>
      PulseAnalytics.fromConfig(configApi, { identityApi, fetchApi, discoveryApi, storageApi }),
  }),
];

export const features: FrontendFeature[] = [analyticsModulePulse];
