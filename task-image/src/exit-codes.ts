/**
 * The worker's exit codes: a contract with the state machine's retry rules.
 * Kept free of imports so the state machine builder can import this file alone.
 *
 * - ok (0): the result is written, or was already there for this job and version.
 * - badInput (65, EX_DATAERR): retrying cannot help (missing object or version,
 *   invalid job environment). Not retryable.
 * - transient (75, EX_TEMPFAIL): network, throttling, S3 5xx, or a stop (SIGTERM).
 *   Retryable.
 */
export const EXIT_CODES = { ok: 0, badInput: 65, transient: 75 } as const;

export type ExitCode = (typeof EXIT_CODES)[keyof typeof EXIT_CODES];
