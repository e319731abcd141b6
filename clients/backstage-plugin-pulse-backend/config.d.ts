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
  };
}
