/**
 * A session id per browser tab, kept in `sessionStorage` so it survives reloads, and replaced
 * after a spell of inactivity (the usual web-analytics definition of a session).
 */

export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export const SESSION_KEY = 'pulse-analytics:session';

export class SessionTracker {
  private memory?: { id: string; lastSeen: number };

  constructor(
    private readonly storage: StorageLike | undefined,
    private readonly idleMs: number,
    private readonly now: () => number,
    private readonly newId: () => string,
  ) {}

  /** The current session's id; calling it counts as activity. */
  current(): string {
    const now = this.now();
    let session = this.memory ?? this.load();
    if (!session || now - session.lastSeen > this.idleMs) {
      session = { id: this.newId(), lastSeen: now };
    }
    session.lastSeen = now;
    this.memory = session;
    try {
      this.storage?.setItem(SESSION_KEY, JSON.stringify(session));
    } catch {
      // Storage full or blocked (private mode): the in-memory session still holds.
    }
    return session.id;
  }

  private load(): { id: string; lastSeen: number } | undefined {
    try {
      const parsed = JSON.parse(this.storage?.getItem(SESSION_KEY) ?? 'null');
      if (typeof parsed?.id === 'string' && typeof parsed?.lastSeen === 'number') return parsed;
    } catch {
      // Unreadable or blocked storage starts a new session.
    }
    return undefined;
  }
}
