// The permission policy example of docs/backstage.md: Pulse's insights for members of
// group:default/pulse-readers only; everything else allowed (a test app, not a production policy).
const { createBackendModule } = require('@backstage/backend-plugin-api');
const { AuthorizeResult } = require('@backstage/plugin-permission-common');
const { policyExtensionPoint } = require('@backstage/plugin-permission-node/alpha');

const READERS = 'group:default/pulse-readers';

class PulseReadersPolicy {
  async handle(request, user) {
    if (request.permission.name === 'pulse.insights.read') {
      const member = user?.info.ownershipEntityRefs.includes(READERS) ?? false;
      return { result: member ? AuthorizeResult.ALLOW : AuthorizeResult.DENY };
    }
    return { result: AuthorizeResult.ALLOW };
  }
}

exports.pulseReadersPolicy = createBackendModule({
  pluginId: 'permission',
  moduleId: 'pulse-readers-policy',
  register(reg) {
    reg.registerInit({
      deps: { policy: policyExtensionPoint },
      async init({ policy }) {
        policy.setPolicy(new PulseReadersPolicy());
      },
    });
  },
});
