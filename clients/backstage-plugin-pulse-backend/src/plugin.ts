/** The `pulse` backend plugin (new backend system): serves Pulse's saved questions at
 * `/api/pulse/questions` to users holding `pulse.insights.read`. */

import { coreServices, createBackendPlugin } from '@backstage/backend-plugin-api';
import { PulseClient } from './client';
import { pulsePermissions } from './permissions';
import { createRouter } from './router';

export const pulsePlugin = createBackendPlugin({
  pluginId: 'pulse',
  register(env) {
    env.registerInit({
      deps: {
        config: coreServices.rootConfig,
        logger: coreServices.logger,
        httpRouter: coreServices.httpRouter,
        httpAuth: coreServices.httpAuth,
        permissions: coreServices.permissions,
        permissionsRegistry: coreServices.permissionsRegistry,
      },
      async init({ config, logger, httpRouter, httpAuth, permissions, permissionsRegistry }) {
        const client = new PulseClient({
          baseUrl: config.getString('pulse.baseUrl'),
          token: config.getString('pulse.token'),
          timeoutMs: config.getOptionalNumber('pulse.timeoutMs') ?? 30_000,
          maxConcurrent: config.getOptionalNumber('pulse.maxConcurrent') ?? 4,
          warn: message => logger.warn(message),
        });
        permissionsRegistry.addPermissions(pulsePermissions);
        httpRouter.use(createRouter({ client, httpAuth, permissions }));
        httpRouter.addAuthPolicy({ path: '/health', allow: 'unauthenticated' });
      },
    });
  },
});
