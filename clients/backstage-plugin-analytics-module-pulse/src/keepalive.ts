/**
 * What a page being hidden can still send: request bodies that fit the browser's keepalive
 * budget, batch by batch (a batch that does not fit is halved), and the events left over.
 */

import { byteLength, requestBody, type EnvelopeMeta, type WireEvent } from './wire.js';

/** Browsers allow 64 KiB of keepalive bodies in flight per page; stay under it. */
export const KEEPALIVE_BUDGET = 60_000;

export interface KeepaliveSend {
  batch: WireEvent[];
  body: string;
}

export function keepaliveSends(
  held: WireEvent[],
  batchLimit: number,
  meta: EnvelopeMeta,
  user: string | undefined,
): { sends: KeepaliveSend[]; rest: WireEvent[] } {
  const sends: KeepaliveSend[] = [];
  let budget = KEEPALIVE_BUDGET;
  let index = 0;
  while (index < held.length) {
    let end = Math.min(held.length, index + batchLimit);
    let body = requestBody(held.slice(index, end), meta, user);
    while (byteLength(body) > budget && end - index > 1) {
      end = index + Math.floor((end - index) / 2);
      body = requestBody(held.slice(index, end), meta, user);
    }
    if (byteLength(body) > budget) break;
    budget -= byteLength(body);
    sends.push({ batch: held.slice(index, end), body });
    index = end;
  }
  return { sends, rest: held.slice(index) };
}
