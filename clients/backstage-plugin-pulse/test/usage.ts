// The registration snippets of docs/backstage.md, type-checked against Backstage's own types
// (npm test runs tsc on this file; it is not executed).

import type { FrontendFeature } from '@backstage/frontend-plugin-api';
import { createElement } from 'react';
import pulsePlugin from '../src/alpha.js';
import { PulsePage, pulsePlugin as legacyPulsePlugin } from '../src/index.js';

// The legacy system: the plugin among the app's plugins, the page on a route.
export const legacyPlugins = [legacyPulsePlugin];
export const legacyRoute = createElement(PulsePage);

// The new system.
export const features: FrontendFeature[] = [pulsePlugin];
