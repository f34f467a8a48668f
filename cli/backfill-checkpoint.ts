/**
 * Where a backfill got to: the listing's marker after the last page whose objects were all sent. Written after each
 * such page (to a file beside it, then renamed over it, so a crash leaves the old or the new one, never half), read
 * on restart. It names what it is a checkpoint of — stage, bucket, prefix, since, inventory — and a different backfill refuses
 * it: resuming one listing's marker in another would skip objects.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { CliError, EXIT } from './stage';

/** What a backfill lists: a checkpoint is only resumed by the same. */
export interface BackfillScope {
  readonly stage: string;
  readonly bucket: string;
  readonly prefix: string;
  /** ISO time, or null for every object. */
  readonly since: string | null;
  /** The S3 Inventory manifest read instead of listing the bucket, or null. */
  readonly inventory: string | null;
}

const checkpointSchema = z.strictObject({
  sluice: z.literal('backfill-checkpoint'),
  stage: z.string(),
  bucket: z.string(),
  prefix: z.string(),
  since: z.string().nullable(),
  inventory: z.string().nullable(),
  /** The listing's next key and version markers (with an inventory: its next file); null once the listing is done. */
  next: z.strictObject({ keyMarker: z.string(), versionIdMarker: z.string().optional() }).nullable(),
  /** Messages sent so far, over every run that used this file. */
  sent: z.number().int().min(0),
  updatedAt: z.string(),
});
export type Checkpoint = z.infer<typeof checkpointSchema>;

/** The checkpoint in `file` for this scope; undefined when the file does not exist yet. */
export function readCheckpoint(file: string, scope: BackfillScope): Checkpoint | undefined {
  if (!existsSync(file)) return undefined;
  let parsed: ReturnType<typeof checkpointSchema.safeParse>;
  try {
    parsed = checkpointSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  } catch {
    throw new CliError(`--checkpoint ${file} is not a backfill checkpoint (not JSON)`, EXIT.usage);
  }
  if (!parsed.success) throw new CliError(`--checkpoint ${file} is not a backfill checkpoint (${parsed.error.issues[0].message})`, EXIT.usage);
  const checkpoint = parsed.data;
  const mismatched = (['stage', 'bucket', 'prefix', 'since', 'inventory'] as const).filter((field) => checkpoint[field] !== scope[field]);
  if (mismatched.length > 0) {
    const was = mismatched.map((field) => `${field} ${JSON.stringify(checkpoint[field])}`).join(', ');
    const now = mismatched.map((field) => `${field} ${JSON.stringify(scope[field])}`).join(', ');
    throw new CliError(`--checkpoint ${file} belongs to another backfill (${was}; this one: ${now}): use another file`, EXIT.usage);
  }
  return checkpoint;
}

export function writeCheckpoint(file: string, scope: BackfillScope, next: Checkpoint['next'], sent: number, now: number): void {
  const checkpoint: Checkpoint = { sluice: 'backfill-checkpoint', ...scope, next, sent, updatedAt: new Date(now).toISOString() };
  const partial = `${file}.partial`;
  writeFileSync(partial, `${JSON.stringify(checkpoint, null, 2)}\n`);
  renameSync(partial, file);
}
