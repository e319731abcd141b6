/** The new frontend system: the `pulse` plugin with its API and a page (the page's title and
 * icon make its nav item). */

import { ApiBlueprint, PageBlueprint, createFrontendPlugin, createRouteRef, discoveryApiRef, fetchApiRef } from '@backstage/frontend-plugin-api';
import { Timeline as TimelineIcon } from '@material-ui/icons';
import { PulseClient, pulseApiRef } from './api.js';

export const rootRouteRef = createRouteRef();

export const pulseApi = ApiBlueprint.make({
  params: define =>
    define({
      api: pulseApiRef,
      deps: { discoveryApi: discoveryApiRef, fetchApi: fetchApiRef },
      factory: ({ discoveryApi, fetchApi }) => new PulseClient({ discoveryApi, fetchApi }),
    }),
});

export const pulsePage = PageBlueprint.make({
  params: {
    path: '/pulse',
    title: 'Pulse insights',
    icon: <TimelineIcon />,
    routeRef: rootRouteRef,
    loader: () => import('./components/InsightsPage.js').then(m => <m.InsightsPage header={false} />),
  },
});

/** `createApp({ features: [pulsePlugin] })`, or discovered by the app automatically. */
export const pulsePlugin = createFrontendPlugin({
  pluginId: 'pulse',
  extensions: [pulseApi, pulsePage],
  routes: { root: rootRouteRef },
});

export default pulsePlugin;
