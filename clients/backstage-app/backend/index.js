// The new backend system with what the test needs: the app's own serving, guest sign-in, the
// catalog, permissions with the policy below, and Pulse's insights plugin as docs/backstage.md
// tells admins to add it.
const { createBackend } = require('@backstage/backend-defaults');
const { pulseReadersPolicy } = require('./policy');

const backend = createBackend();
backend.add(import('@backstage/plugin-app-backend'));
backend.add(import('@backstage/plugin-auth-backend'));
backend.add(import('@backstage/plugin-auth-backend-module-guest-provider'));
backend.add(import('@backstage/plugin-catalog-backend'));
backend.add(import('@backstage/plugin-permission-backend'));
backend.add(pulseReadersPolicy);
backend.add(import('@pulse-analytics/backstage-plugin-pulse-backend'));
backend.start();
