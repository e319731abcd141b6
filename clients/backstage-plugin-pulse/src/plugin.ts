/** The legacy frontend system: the `pulse` plugin, its API and its routable page. */

import {
  createApiFactory,
  createPlugin,
  createRoutableExtension,
  createRouteRef,
  discoveryApiRef,
  fetchApiRef,
} from '@backstage/core-plugin-api';
import { PulseClient, pulseApiRef } from './api.js';

export const rootRouteRef = createRouteRef({ id: 'pulse' });

export const pulsePlugin = createPlugin({
  id: 'pulse',
  apis: [
    createApiFactory({
      api: pulseApiRef,
      deps: { discoveryApi: discoveryApiRef, fetchApi: fetchApiRef },
      factory: ({ discoveryApi, fetchApi }) => new PulseClient({ discoveryApi, fetchApi }),
    }),
  ],
  routes: { root: rootRouteRef },
});

/** `<Route path="/pulse" element={<PulsePage />} />` in the app's routes. */
export const PulsePage = pulsePlugin.provide(
  createRoutableExtension({
    name: 'PulsePage',
    component: () => import('./components/InsightsPage.js').then(m => m.InsightsPage),
    mountPoint: rootRouteRef,
  }),
);
