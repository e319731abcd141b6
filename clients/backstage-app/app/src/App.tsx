// The new frontend system, as docs/backstage.md tells admins to install Pulse: the analytics
// module and the insights page as features, beside the catalog and a guest sign-in page.
import { SignInPage } from '@backstage/core-components';
import { createApp } from '@backstage/frontend-defaults';
import { createFrontendModule } from '@backstage/frontend-plugin-api';
import { SignInPageBlueprint } from '@backstage/plugin-app-react';
import catalogPlugin from '@backstage/plugin-catalog/alpha';
import analyticsModulePulse from '@pulse-analytics/backstage-plugin-analytics-module-pulse/alpha';
import pulsePlugin from '@pulse-analytics/backstage-plugin-pulse/alpha';

const signIn = createFrontendModule({
  pluginId: 'app',
  extensions: [
    SignInPageBlueprint.make({
      params: { loader: async () => props => <SignInPage {...props} providers={['guest']} /> },
    }),
  ],
});

export default createApp({ features: [catalogPlugin, pulsePlugin, analyticsModulePulse, signIn] });
