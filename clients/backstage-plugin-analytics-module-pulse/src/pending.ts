/**
 * Events a hidden page could not send, kept in `localStorage` for the next page load (this
 * tab's or another's). Storage may be blocked or full: each failure is reported, never thrown.
 */

import type { StorageLike } from './session.js';
import type { WireEvent } from './wire.js';

export const PENDING_PREFIX = 'pulse-analytics:pending:';

export type Persist = StorageLike & { readonly length?: number; key?(index: number): string | null };
type Warn = (code: string, message: string, ...rest: unknown[]) => void;

export class PendingStore {
  constructor(
    private readonly store: Persist | undefined,
    private readonly tabId: string,
    private readonly maxEvents: number,
    private readonly warn: Warn,
  ) {}

  /** Keeps the newest `maxEvents` of these for the next page load. */
  save(events: WireEvent[]): void {
    try {
      this.store?.setItem(PENDING_PREFIX + this.tabId, JSON.stringify(events.slice(-this.maxEvents)));
    } catch (error) {
      this.warn('persist', 'could not keep unsent events for the next page load', error);
    }
  }

  /** This tab's events are still queued here: forget the saved copy. */
  clear(): void {
    try {
      this.store?.removeItem(PENDING_PREFIX + this.tabId);
    } catch {
      // Blocked storage: nothing was persisted either.
    }
  }

  /** Takes (and removes) what every page that went away left behind. */
  takeAll(): WireEvent[] {
    const store = this.store;
    if (!store || store.key === undefined || store.length === undefined) return [];
    const taken: WireEvent[] = [];
    try {
      const keys: string[] = [];
      for (let i = 0; i < store.length; i += 1) {
        const key = store.key(i);
        if (key?.startsWith(PENDING_PREFIX)) keys.push(key);
      }
      for (const key of keys) {
        const raw = store.getItem(key);
        store.removeItem(key);
        const events: unknown = JSON.parse(raw ?? '[]');
        if (Array.isArray(events)) taken.push(...(events as WireEvent[]));
      }
    } catch (error) {
      this.warn('restore', 'could not restore events left by an earlier page', error);
    }
    return taken;
  }
}
