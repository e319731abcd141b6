export interface Config {
  app?: {
    analytics?: {
      /**
       * Pulse analytics module: ships Backstage analytics events to Pulse, through Backstage's
       * backend (Pulse's backend plugin, which adds the signed-in user) unless `endpoint` is set.
       */
      pulse?: {
        /**
         * Direct mode: a collector's events URL, e.g. https://pulse.example.com/v1/events, or a
         * path on the Backstage origin when a proxy forwards it (and adds the token). Users sent
         * so are only claimed, not verified. Default: `/api/pulse/events` of Backstage's backend.
         * @visibility frontend
         */
        endpoint?: string;
        /**
         * Direct mode only: the bearer token the collector knows this Backstage instance by. It
         * is read by the browser, so it is an ingest credential: it can only append events for
         * this instance. Leave it out when a proxy adds the Authorization header.
         * @visibility frontend
         */
        token?: string;
        /**
         * Set to false to capture nothing (e.g. in development). Default true.
         * @visibility frontend
         */
        enabled?: boolean;
        /**
         * Milliseconds between flushes of a partly filled batch. Default 5000.
         * @visibility frontend
         */
        flushIntervalMs?: number;
        /**
         * Events per request; a full batch is sent at once. Default 50, at most 1000.
         * @visibility frontend
         */
        maxBatchSize?: number;
        /**
         * Events held while Pulse is unreachable; the oldest are dropped beyond it.
         * Default 2000.
         * @visibility frontend
         */
        maxQueueSize?: number;
        /**
         * Whether events carry the signed-in user's entity ref: disabled (never), optional
         * (when known), required (direct mode: events wait for it and are never sent without
         * it). Default optional. The collector replaces the ref with an HMAC before storing it.
         * @visibility frontend
         */
        identity?: 'disabled' | 'optional' | 'required';
        /**
         * Direct mode: none sends the entity ref over TLS for the collector to key; sha-256 sends
         * "sha256:<hex>" so that no raw ref is on the wire (the collector keys that too).
         * Default none.
         * @visibility frontend
         */
        userIdTransform?: 'none' | 'sha-256';
        /**
         * What the events of a user who opted out (the insights page's switch, or the
         * browser's Global Privacy Control when honoured) become: sent without identity
         * (anonymous) or not sent (drop). Default anonymous.
         * @visibility frontend
         */
        optOut?: 'anonymous' | 'drop';
        /**
         * Treat `navigator.globalPrivacyControl` as the user's opt-out. Default false.
         * @visibility frontend
         */
        honorGlobalPrivacyControl?: boolean;
        /**
         * A tab's session id is replaced after this many idle minutes. Default 30.
         * @visibility frontend
         */
        sessionIdleMinutes?: number;
        /**
         * The app's version, stored with every event.
         * @visibility frontend
         */
        appVersion?: string;
        /**
         * The Backstage release the app is built on (from backstage.json), stored with every
         * event.
         * @visibility frontend
         */
        backstageVersion?: string;
        /**
         * Log every captured event and every request to the browser console. Default false.
         * @visibility frontend
         */
        debug?: boolean;
      };
    };
  };
}
