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
  };
}
