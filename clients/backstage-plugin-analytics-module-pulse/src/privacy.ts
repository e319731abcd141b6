/**
 * A user's choice not to be analysed: the opt-out they set in Backstage (the insights page's
 * switch, kept by Backstage's storage API under bucket `pulse`, key `optOut`) and, when the
 * app is configured to honour it, the browser's Global Privacy Control signal. An opted-out
 * user's events leave without identity, or not at all, as `app.analytics.pulse.optOut` says.
 */

/** The bucket and key of the opt-out in Backstage's storage API (the page plugin writes it). */
export const OPT_OUT_BUCKET = 'pulse';
export const OPT_OUT_KEY = 'optOut';

export type OptOutMode = 'anonymous' | 'drop';

/** The part of Backstage's `StorageApi` this needs. */
export interface PreferenceStorage {
  forBucket(name: string): PreferenceBucket;
}

interface Snapshot {
  value?: unknown;
  /** `unknown` while a user-settings backend has not answered yet. */
  presence?: 'unknown' | 'absent' | 'present';
}

interface PreferenceBucket {
  snapshot(key: string): Snapshot;
  observe$(key: string): { subscribe(observer: { next(snapshot: Snapshot): void }): { unsubscribe(): void } };
}

export class Privacy {
  private readonly bucket?: PreferenceBucket;
  /** The last value observed: what counts while a snapshot is still unknown. */
  private observed = false;
  private readonly stop: () => void = () => {};

  constructor(
    readonly mode: OptOutMode,
    storage: PreferenceStorage | undefined,
    /** `navigator.globalPrivacyControl` when the app honours it, else false. */
    private readonly globalPrivacyControl: () => boolean,
  ) {
    if (!storage) return;
    const bucket = (this.bucket = storage.forBucket(OPT_OUT_BUCKET));
    // Observing also makes a user-settings backend fetch the value.
    const subscription = bucket.observe$(OPT_OUT_KEY).subscribe({ next: s => (this.observed = s.value === true) });
    this.stop = () => subscription.unsubscribe();
  }

  /** Whether the user asked not to be analysed, now (read at each use: the page's switch may
   * have moved in this tab or another). */
  get declined(): boolean {
    const now = this.bucket?.snapshot(OPT_OUT_KEY);
    const optedOut = now && now.presence !== 'unknown' ? now.value === true : this.observed;
    return optedOut || this.globalPrivacyControl();
  }

  /** An event captured now is not sent at all. */
  get drops(): boolean {
    return this.mode === 'drop' && this.declined;
  }

  dispose(): void {
    this.stop();
  }
}

/** `navigator.globalPrivacyControl`, read each time (a browser setting can change). */
export function globalPrivacyControl(honour: boolean, navigator: { globalPrivacyControl?: unknown } | undefined): () => boolean {
  return honour ? () => navigator?.globalPrivacyControl === true : () => false;
}
