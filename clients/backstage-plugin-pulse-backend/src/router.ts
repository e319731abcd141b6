/**
 * The routes: the saved questions the insights page asks, for signed-in users holding
 * `pulse.insights.read`, each answer Pulse's as it came; and the analytics module's events,
 * sent on to the collector as the signed-in user's.
 */

import type { HttpAuthService, PermissionsService, UserInfoService } from '@backstage/backend-plugin-api';
import { InputError, NotAllowedError, NotFoundError } from '@backstage/errors';
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import express, { type Request, type Response } from 'express';
import Router from 'express-promise-router';
import type { ErasureSubject, PulseAnswer, PulseClient } from './client';
import { refusal, type EventForwarder, type IngestAnswer } from './ingest';
import { pulseErasePermission, pulseInsightsReadPermission } from './permissions';

export interface RouterOptions {
  client: PulseClient;
  httpAuth: HttpAuthService;
  permissions: PermissionsService;
  userInfo: UserInfoService;
  /** Undefined when `pulse.collector` is not configured: the events route answers 404. */
  forwarder?: EventForwarder;
  maxRequestBytes: number;
}

export function createRouter(o: RouterOptions): express.Router {
  const { client, httpAuth, permissions } = o;
  const router = Router();

  async function allowed(req: Request, permission = pulseInsightsReadPermission) {
    const credentials = await httpAuth.credentials(req, { allow: ['user'] });
    const [decision] = await permissions.authorize([{ permission }], { credentials });
    if (decision.result !== AuthorizeResult.ALLOW) {
      const what = permission === pulseInsightsReadPermission ? 'read Pulse insights' : 'erase people from Pulse';
      throw new NotAllowedError(`you are not allowed to ${what} (${permission.name})`);
    }
    return credentials;
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

  // Erasing a person (and verifying an erasure): users holding pulse.people.erase, through
  // Pulse's admin token; the receipt names who asked.
  for (const [path, action] of [['/erasures', 'erase'], ['/erasures/verify', 'verify']] as const) {
    router.post(
      path,
      async (req, res, next) => {
        // Who is asking comes first: a body is read only for a holder of the permission.
        res.locals.credentials = await allowed(req, pulseErasePermission);
        if (!client.erases) throw new NotFoundError('erasures are not configured (pulse.adminToken)');
        next();
      },
      express.json({ limit: '4kb' }),
      async (req, res) => {
        const subject = erasureSubject(req.body);
        const { userEntityRef } = await o.userInfo.getUserInfo(res.locals.credentials);
        send(res, await client.erasure(action, subject, userEntityRef));
      },
    );
  }

  router.post(
    '/events',
    async (req, res, next) => {
      // Who is asking comes first: a body is read only for a signed-in user.
      const credentials = await httpAuth.credentials(req, { allow: ['user'] });
      if (!o.forwarder) throw new NotFoundError("Pulse's collector is not configured (pulse.collector)");
      res.locals.user = (await o.userInfo.getUserInfo(credentials)).userEntityRef;
      next();
    },
    express.raw({ type: () => true, limit: o.maxRequestBytes }),
    async (req, res) => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      answer(res, await o.forwarder!.forward(body, res.locals.user as string));
    },
  );

  // The body reader's refusals, in the collector's words.
  router.use('/events', (error: { type?: string }, _req: Request, res: Response, next: express.NextFunction) => {
    if (error?.type === 'entity.too.large') return answer(res, refusal(413, 'request_too_large', `at most ${o.maxRequestBytes} bytes`));
    if (error?.type === 'request.aborted' || error?.type === 'encoding.unsupported' || error?.type === 'charset.unsupported') {
      return answer(res, refusal(400, 'invalid_body', `could not read the body (${error.type})`));
    }
    return next(error);
  });

  return router;
}

function answer(res: Response, a: IngestAnswer): void {
  if (a.retryAfter) res.setHeader('Retry-After', a.retryAfter);
  res.status(a.status).type('application/json').send(a.body);
}

/** Exactly one person: `{"user": "user:<namespace>/<name>"}` or `{"user_id": "<64 hex>"}`. */
function erasureSubject(body: unknown): ErasureSubject {
  const { user, user_id: userId } = (body ?? {}) as Record<string, unknown>;
  if (typeof user === 'string' && userId === undefined && /^user:[^/\s]+\/[^/\s]+$/i.test(user)) return { user };
  if (typeof userId === 'string' && user === undefined && /^[0-9a-f]{64}$/.test(userId)) return { user_id: userId };
  throw new InputError('name one person: {"user": "user:<namespace>/<name>"} or {"user_id": "<64 hex>"}');
}
