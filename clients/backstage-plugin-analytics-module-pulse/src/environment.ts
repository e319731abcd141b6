/**
 * The browser facilities the module uses, each optional: storage can be blocked (sandboxed
 * frames, private modes) and none of it exists during server-side tests.
 */

import type { Clock, Logger } from './shipper.js';
import type { StorageLike } from './session.js';
import type { FetchLike } from './transport.js';

export interface EventTargetLike {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
}

export interface BrowserEnvironment {
  fetch?: FetchLike;
  sessionStorage?: StorageLike;
  localStorage?: StorageLike & { readonly length: number; key(index: number): string | null };
  document?: EventTargetLike & { readonly visibilityState: string };
  window?: EventTargetLike;
  /** For `globalPrivacyControl`. */
  navigator?: { readonly globalPrivacyControl?: unknown };
  clock: Clock;
  randomUUID(): string;
  log: Logger;
}

function storage(name: 'sessionStorage' | 'localStorage') {
  try {
    return (globalThis as Record<string, any>)[name] ?? undefined; // access throws when blocked
  } catch {
    return undefined;
  }
}

/** `crypto.randomUUID` exists only in secure contexts; a v4 UUID from random bytes otherwise. */
export function randomUUID(crypto: Crypto): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = Array.from(b, x => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function browserEnvironment(): BrowserEnvironment {
  const g = globalThis as Record<string, any>;
  return {
    fetch: typeof g.fetch === 'function' ? (url, init) => g.fetch(url, init) : undefined,
    sessionStorage: storage('sessionStorage'),
    localStorage: storage('localStorage'),
    document: g.document,
    window: g.window,
    navigator: g.navigator,
    clock: {
      now: () => Date.now(),
      setTimeout: (callback, ms) => setTimeout(callback, ms),
      clearTimeout: handle => clearTimeout(handle as ReturnType<typeof setTimeout>),
      random: () => Math.random(),
    },
    randomUUID: () => randomUUID(g.crypto),
    log: {
      debug: (message, ...rest) => console.debug(message, ...rest),
      warn: (message, ...rest) => console.warn(message, ...rest),
    },
  };
}
