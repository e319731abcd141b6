// The permission policy example of docs/backstage.md: Pulse's insights for members of
// group:default/pulse-readers only, erasing people for the platform team's; everything else
// allowed (a test app, not a production policy).
const { createBackendModule } = require('@backstage/backend-plugin-api');
const { AuthorizeResult } = require('@backstage/plugin-permission-common');
const { policyExtensionPoint } = require('@backstage/plugin-permission-node/alpha');

const READERS = 'group:default/pulse-readers';
const ADMINS = 'group:default/platform';

class PulseReadersPolicy {
  async handle(request, user) {
    const group = { 'pulse.insights.read': READERS, 'pulse.people.erase': ADMINS }[request.permission.name];
    if (group) {
      const member = user?.info.ownershipEntityRefs.includes(group) ?? false;
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
