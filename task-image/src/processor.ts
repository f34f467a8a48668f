import type { Readable } from 'node:stream';
import type { Logger } from './log';

/** What a processor gets: one object version, streamed. */
export interface ProcessorInput {
  /** The object's bytes. Consume it once, in order; it is never held whole in memory. */
  body: Readable;
  bucket: string;
  key: string;
  /** The version actually read (S3's answer), when the bucket is versioned. */
  versionId: string | undefined;
  contentType: string | undefined;
  contentLength: number | undefined;
  /** Aborted on SIGTERM: stop promptly and throw; the worker writes nothing and exits retryable. */
  signal: AbortSignal;
  log: Logger;
}

/**
 * The per-object work. Its output (JSON-serialisable) is stored under `output` in the result.
 * Throw `BadInputError` for input that can never be processed (exit 65, not retried);
 * any other error counts as transient (exit 75, retried).
 */
export interface Processor<Output = unknown> {
  /** Recorded in every result, so readers know what produced it. */
  readonly name: string;
  readonly version: string;
  process(input: ProcessorInput): Promise<Output>;
}
