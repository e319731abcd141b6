/**
 * The routes the insights page calls: the saved questions, for signed-in users holding
 * `pulse.insights.read`; each answer is Pulse's, passed on as it came.
 */

import type { HttpAuthService, PermissionsService } from '@backstage/backend-plugin-api';
import { NotAllowedError } from '@backstage/errors';
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import express, { type Request, type Response } from 'express';
import Router from 'express-promise-router';
import type { PulseAnswer, PulseClient } from './client';
import { pulseInsightsReadPermission } from './permissions';

export interface RouterOptions {
  client: PulseClient;
  httpAuth: HttpAuthService;
  permissions: PermissionsService;
}

export function createRouter({ client, httpAuth, permissions }: RouterOptions): express.Router {
  const router = Router();

  async function allowed(req: Request): Promise<void> {
    const credentials = await httpAuth.credentials(req, { allow: ['user'] });
    const [decision] = await permissions.authorize([{ permission: pulseInsightsReadPermission }], { credentials });
    if (decision.result !== AuthorizeResult.ALLOW) {
      throw new NotAllowedError('you are not allowed to read Pulse insights (pulse.insights.read)');
    }
  }

  function send(res: Response, answer: PulseAnswer): void {
    res.status(answer.status).type(answer.contentType).send(answer.body);
  }

  router.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get('/questions', async (req, res) => {
    await allowed(req);
    send(res, await client.catalogue());
  });

  router.get('/questions/:name', async (req, res) => {
    await allowed(req);
    const accept = req.query.format === 'csv' || req.accepts(['json', 'csv']) === 'csv' ? 'text/csv' : 'application/json';
    send(res, await client.question(req.params.name, req.query as Record<string, unknown>, accept));
  });

  return router;
}
