/** The signed-in user's entity ref, as the identity mode and transform allow. */

import type { IdentityMode, UserIdTransform } from './options.js';

export interface IdentitySource {
  getBackstageIdentity(): Promise<{ userEntityRef: string }>;
}

/** Thrown when identity is required but cannot be had; such events are not sent. */
export class IdentityUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`the user identity is required but unavailable: ${String(cause)}`);
    this.name = 'IdentityUnavailableError';
  }
}

export async function sha256Hex(text: string): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), b => b.toString(16).padStart(2, '0')).join('');
}

async function transformed(ref: string, transform: UserIdTransform): Promise<string> {
  if (transform === 'none') return ref;
  if (transform === 'sha-256') return `sha256:${await sha256Hex(ref)}`;
  return transform(ref);
}

/**
 * Resolves the user once (the identity of a page does not change) and remembers it, so
 * that a page-hide flush, which cannot wait, can use it.
 */
export class UserResolver {
  private pending?: Promise<string | undefined>;
  /** Settled value: undefined while unknown, null when there is no user to send. */
  settled: string | null | undefined;

  constructor(
    readonly mode: IdentityMode,
    private readonly source: IdentitySource | undefined,
    private readonly transform: UserIdTransform,
  ) {
    if (mode === 'disabled') this.settled = null;
  }

  /** The user to send, undefined for none; rejects with IdentityUnavailableError if required. */
  resolve(): Promise<string | undefined> {
    this.pending ??= this.lookup();
    return this.pending;
  }

  private async lookup(): Promise<string | undefined> {
    if (this.mode === 'disabled') return undefined;
    try {
      if (!this.source) throw new Error('no identity API was given');
      const { userEntityRef } = await this.source.getBackstageIdentity();
      if (!userEntityRef) throw new Error('the identity has no user entity ref');
      const user = await transformed(userEntityRef, this.transform);
      this.settled = user;
      return user;
    } catch (error) {
      if (this.mode === 'required') {
        this.pending = undefined; // a later flush asks again (e.g. after sign-in)
        throw new IdentityUnavailableError(error);
      }
      this.settled = null;
      return undefined;
    }
  }
}
