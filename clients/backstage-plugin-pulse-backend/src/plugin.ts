/** The `pulse` backend plugin (new backend system): serves Pulse's saved questions at
 * `/api/pulse/questions` to users holding `pulse.insights.read`, takes the analytics module's
 * events at `/api/pulse/events` as the signed-in user's, and erases people at
 * `/api/pulse/erasures` for users holding `pulse.people.erase`. */

import { coreServices, createBackendPlugin } from '@backstage/backend-plugin-api';
import { PulseClient } from './client';
import { EventForwarder } from './ingest';
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
        userInfo: coreServices.userInfo,
        permissions: coreServices.permissions,
        permissionsRegistry: coreServices.permissionsRegistry,
      },
      async init({ config, logger, httpRouter, httpAuth, userInfo, permissions, permissionsRegistry }) {
        const client = new PulseClient({
          baseUrl: config.getString('pulse.baseUrl'),
          token: config.getString('pulse.token'),
          timeoutMs: config.getOptionalNumber('pulse.timeoutMs') ?? 30_000,
          maxConcurrent: config.getOptionalNumber('pulse.maxConcurrent') ?? 4,
          warn: message => logger.warn(message),
          adminToken: config.getOptionalString('pulse.adminToken'),
          erasureTimeoutMs: config.getOptionalNumber('pulse.erasureTimeoutMs') ?? 600_000,
        });
        const collector = config.getOptionalConfig('pulse.collector');
        const forwarder = collector
          ? new EventForwarder({
              url: collector.getString('url'),
              token: collector.getString('token'),
              timeoutMs: collector.getOptionalNumber('timeoutMs') ?? 30_000,
              eventsPerMinute: collector.getOptionalNumber('eventsPerMinute') ?? 600,
              warn: message => logger.warn(message),
            })
          : undefined;
        if (!forwarder) logger.info('pulse.collector is not configured: /api/pulse/events answers 404');
        const maxRequestBytes = collector?.getOptionalNumber('maxRequestBytes') ?? 1_048_576;
        permissionsRegistry.addPermissions(pulsePermissions);
        httpRouter.use(createRouter({ client, httpAuth, permissions, userInfo, forwarder, maxRequestBytes }));
        httpRouter.addAuthPolicy({ path: '/health', allow: 'unauthenticated' });
      },
    });
  },
});
