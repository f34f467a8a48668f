import { createHash } from 'node:crypto';
import type { Processor, ProcessorInput } from '../processor';
import { structureCheckerFor, type StructureReport } from './structure';

export interface DefaultProcessorOutput {
  bytes: number;
  sha256: string;
  /** Newline-terminated lines, plus a last line without a newline. */
  lines: number;
  /** Present for .json, .jsonl/.ndjson and .csv keys. */
  structure?: StructureReport;
}

/** Byte count, SHA-256, line count and, for JSON/JSON Lines/CSV, a structural check; all in one streaming pass. */
export const defaultProcessor: Processor<DefaultProcessorOutput> = {
  name: 'sluice-default',
  version: '1',
  async process({ body, key, signal }: ProcessorInput): Promise<DefaultProcessorOutput> {
    const hash = createHash('sha256');
    const structure = structureCheckerFor(key);
    let bytes = 0;
    let newlines = 0;
    let lastByte = -1;
    for await (const data of body) {
      signal.throwIfAborted();
      const chunk: Buffer = Buffer.isBuffer(data) ? data : Buffer.from(data as Uint8Array);
      if (chunk.length === 0) continue;
      hash.update(chunk);
      bytes += chunk.length;
      for (let at = chunk.indexOf(0x0a); at !== -1; at = chunk.indexOf(0x0a, at + 1)) newlines++;
      lastByte = chunk[chunk.length - 1];
      structure?.write(chunk);
    }
    signal.throwIfAborted();
    const lines = newlines + (bytes > 0 && lastByte !== 0x0a ? 1 : 0);
    const output: DefaultProcessorOutput = { bytes, sha256: hash.digest('hex'), lines };
    if (structure) output.structure = structure.end();
    return output;
  },
};
