/**
 * An S3 Inventory report as a backfill's listing, for a bucket too large to list object by object: its manifest.json
 * names gzipped CSV files in the inventory's destination bucket, one object version a row, with the columns the
 * manifest's fileSchema names. Keys in the CSV are URL-encoded. The report must list every version (VersionId and
 * IsLatest columns): the job id is the version's.
 */
import { GetObjectCommand, type ObjectVersion } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { z } from 'zod';
import type { StageClients } from './stage';
import { CliError, EXIT } from './stage';

export interface S3Location {
  readonly bucket: string;
  readonly key: string;
}

/** `s3://bucket/path/manifest.json`. */
export function parseS3Url(option: string, text: string): S3Location {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(text);
  if (!match) throw new CliError(`${option} takes an S3 URL like s3://bucket/path/manifest.json (got "${text}")`, EXIT.usage);
  return { bucket: match[1], key: match[2] };
}

const manifestSchema = z.object({
  sourceBucket: z.string().min(1),
  destinationBucket: z.string().min(1),
  fileFormat: z.string(),
  fileSchema: z.string(),
  files: z.array(z.object({ key: z.string().min(1) })),
});

export interface Inventory {
  /** The bucket the CSV files are in. */
  readonly bucket: string;
  readonly files: readonly string[];
  readonly columns: readonly string[];
}

// LastModifiedDate: --since reads it, and an object from before versioning is identified by it.
const REQUIRED_COLUMNS = ['Key', 'VersionId', 'IsLatest', 'LastModifiedDate'] as const;

async function getText(clients: StageClients, location: S3Location): Promise<string> {
  const { Body } = await clients.s3.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key }));
  return Body!.transformToString();
}

/** The manifest at `url`: an inventory of `sourceBucket`, in CSV, with the version columns. */
export async function readManifest(clients: StageClients, url: string, sourceBucket: string): Promise<Inventory> {
  let parsed: ReturnType<typeof manifestSchema.safeParse>;
  try {
    parsed = manifestSchema.safeParse(JSON.parse(await getText(clients, parseS3Url('--inventory', url))));
  } catch (error) {
    if (error instanceof SyntaxError) throw new CliError(`--inventory ${url} is not an S3 Inventory manifest (not JSON)`, EXIT.usage);
    throw error;
  }
  if (!parsed.success) throw new CliError(`--inventory ${url} is not an S3 Inventory manifest (${parsed.error.issues[0].path.join('.')} missing)`, EXIT.usage);
  const manifest = parsed.data;
  const columns = manifest.fileSchema.split(',').map((c) => c.trim());
  const problem =
    manifest.sourceBucket !== sourceBucket
      ? `it lists bucket ${manifest.sourceBucket}, not the stage's ${sourceBucket}`
      : manifest.fileFormat !== 'CSV'
        ? `its format is ${manifest.fileFormat}; backfill reads CSV`
        : REQUIRED_COLUMNS.filter((c) => !columns.includes(c)).map(
            (c) => `it has no ${c} column (an inventory of all versions, with the LastModifiedDate field, has)`,
          )[0];
  if (problem) throw new CliError(`--inventory ${url}: ${problem}`, EXIT.usage);
  return { bucket: manifest.destinationBucket.replace(/^arn:aws[\w-]*:s3:::/, ''), files: manifest.files.map((f) => f.key), columns };
}

/** One CSV line's fields: quoted ("a, ""b""") or bare. */
export function csvFields(line: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted && c === '"' && line[i + 1] === '"') {
      field += '"'; // an escaped quote
      i++;
    } else if (c === '"') {
      quoted = !quoted;
    } else if (c === ',' && !quoted) {
      fields.push(field);
      field = '';
    } else {
      field += c;
    }
  }
  fields.push(field);
  return fields;
}

/** A row as the version ListObjectVersions would list; a delete marker is not the current object. */
export function versionOfRow(fields: readonly string[], columns: readonly string[]): ObjectVersion {
  const at = (name: string) => {
    const index = columns.indexOf(name);
    return index < 0 ? undefined : fields[index];
  };
  const modified = at('LastModifiedDate');
  return {
    Key: decodeURIComponent((at('Key') ?? '').replace(/\+/g, ' ')),
    VersionId: at('VersionId') || 'null',
    IsLatest: at('IsLatest') === 'true' && at('IsDeleteMarker') !== 'true',
    LastModified: modified ? new Date(modified) : undefined,
    Size: at('Size') ? Number(at('Size')) : undefined,
    ETag: at('ETag'),
  };
}

/** The versions one CSV.gz file lists under `prefix`. */
export async function readInventoryFile(clients: StageClients, inventory: Inventory, file: string, prefix: string): Promise<ObjectVersion[]> {
  const { Body } = await clients.s3.send(new GetObjectCommand({ Bucket: inventory.bucket, Key: file }));
  const lines = createInterface({ input: (Body as Readable).pipe(createGunzip()), crlfDelay: Number.POSITIVE_INFINITY });
  const versions: ObjectVersion[] = [];
  for await (const line of lines) {
    if (line.trim() === '') continue;
    const version = versionOfRow(csvFields(line), inventory.columns);
    if (version.Key!.startsWith(prefix)) versions.push(version);
  }
  return versions;
}
