export interface Config {
  /** Where the insights come from: Pulse's query port and this backend's read token. */
  pulse: {
    /** Pulse's query port, e.g. http://pulse-dashboard:8124 */
    baseUrl: string;
    /**
     * A read token Pulse knows (PULSE_QUERY_READ_TOKENS), e.g. `${PULSE_BACKSTAGE_TOKEN}`.
     * @visibility secret
     */
    token: string;
    /** How long to wait for an answer, in milliseconds (default 30000). */
    timeoutMs?: number;
    /**
     * Requests to Pulse at once (default 4, Pulse's default PULSE_QUERY_MAX_CONCURRENT); the
     * insights page asks about a dozen questions together, and the rest wait their turn.
     */
    maxConcurrent?: number;
    /**
     * Pulse's admin token (PULSE_QUERY_ADMIN_TOKEN), e.g. `${PULSE_ADMIN_TOKEN}`: with it,
     * users holding `pulse.people.erase` can erase a person at `/api/pulse/erasures`. Without
     * it, that route answers 404.
     * @visibility secret
     */
    adminToken?: string;
    /** How long an erasure may take, in milliseconds (default 600000: it waits for the sinks). */
    erasureTimeoutMs?: number;
    /**
     * Where `/api/pulse/events` sends the analytics module's events, as the signed-in user's.
     * Without it, that route answers 404.
     */
    collector?: {
      /** The collector's base URL, e.g. http://pulse-collector:7007 (its /v1/events is used). */
      url: string;
      /**
       * A token in the collector's PULSE_COLLECTOR_BACKEND_TOKENS, e.g.
       * `${PULSE_BACKEND_INGEST_TOKEN}`: events sent with it are stored with their users
       * verified. Only this backend holds it.
       * @visibility secret
       */
      token: string;
      /** Events one signed-in user may send per minute (default 600); beyond it, 429. */
      eventsPerMinute?: number;
      /** The largest request body taken, in bytes (default 1048576, the collector's). */
      maxRequestBytes?: number;
      /** How long to wait for the collector, in milliseconds (default 30000). */
      timeoutMs?: number;
    };
  };
}
