/** A local S3 (s3rver) and the bundled worker run against it: the worker tests' and `npm run bench:worker`'s. */
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import S3rver, { type S3rverMiddleware } from 's3rver';
import { WORKER_NODE_FLAGS } from '../worker-node-flags';

export const REPO_ROOT = resolve(__dirname, '..', '..');
export const WORKER_BUNDLE = join(REPO_ROOT, 'task-image', 'dist', 'worker.js');
export const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface LocalS3 {
  endpoint: string;
  client: S3Client;
  close(): Promise<void>;
}

/** Whether an object is there (HEAD answers 404 when not; any other error is thrown). */
export async function objectExists(client: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
    throw error;
  }
}

/** A real s3rver on 127.0.0.1, random port, temp directory; middleware runs in front of its routes. */
export async function startLocalS3(buckets: string[], middleware: S3rverMiddleware[] = []): Promise<LocalS3> {
  const directory = mkdtempSync(join(tmpdir(), 'sluice-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  // After s3rver's logger, before its XML encoder and routes.
  server.middleware.splice(1, 0, ...middleware);
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    credentials: CREDENTIALS,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    endpoint,
    client,
    async close() {
      client.destroy();
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/**
 * s3rver ignores versionId. This gives it the minimum of S3 versioning the worker relies on:
 * each PUT gets a new version id (x-amz-version-id), GET/HEAD of the current version answers with
 * it, and any other version id gets S3's documented 404 NoSuchVersion.
 */
export function versioningEmulation(): S3rverMiddleware {
  const currentVersion = new Map<string, string>();
  return async (ctx, next) => {
    const versionId = typeof ctx.query.versionId === 'string' ? ctx.query.versionId : undefined;
    if (versionId !== undefined && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
      if (currentVersion.get(ctx.path) !== versionId) {
        ctx.status = 404;
        ctx.type = 'application/xml';
        ctx.body =
          '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchVersion</Code>' +
          '<Message>The specified version does not exist.</Message>' +
          `<VersionId>${versionId}</VersionId></Error>`;
        return;
      }
    }
    await next();
    if (ctx.method === 'PUT' && ctx.status === 200 && !('uploadId' in ctx.query)) {
      const newVersion = randomUUID().replace(/-/g, '');
      currentVersion.set(ctx.path, newVersion);
      ctx.set('x-amz-version-id', newVersion);
    } else if ((ctx.method === 'GET' || ctx.method === 'HEAD') && currentVersion.has(ctx.path)) {
      ctx.set('x-amz-version-id', currentVersion.get(ctx.path)!);
    }
  };
}

/**
 * S3 as the task role sees it: a GET or HEAD of a missing key is 403 AccessDenied, not 404, because the role may
 * list only under its prefixes ("If you don't have the s3:ListBucket permission, Amazon S3 returns 403", GetObject).
 */
export function forbidMissingKeys(): S3rverMiddleware {
  return async (ctx, next) => {
    await next();
    const isObject = ctx.path.split('/').filter(Boolean).length >= 2;
    if (!isObject || (ctx.method !== 'GET' && ctx.method !== 'HEAD') || ctx.status !== 404) return;
    ctx.status = 403;
    ctx.type = 'application/xml';
    ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>';
  };
}

/** Serves GETs of keys containing `marker` one chunk per `delayMs`: a slow network, so a stop lands mid-stream. */
export function slowDownloads(marker: string, delayMs: number): S3rverMiddleware {
  return async (ctx, next) => {
    await next();
    if (ctx.method !== 'GET' || !ctx.path.includes(marker) || !(ctx.body instanceof Readable)) return;
    const source = ctx.body;
    const throttled = new PassThrough({ highWaterMark: 16 * 1024 });
    (async () => {
      for await (const chunk of source) {
        await new Promise((done) => setTimeout(done, delayMs));
        if (!throttled.write(chunk)) await new Promise((done) => throttled.once('drain', done));
      }
      throttled.end();
    })().catch((error: Error) => throttled.destroy(error));
    ctx.body = throttled;
  };
}

/**
 * Answers GETs of the keys in `unavailable` (bucket-relative, e.g. 'in/a.txt') with S3's 503 SlowDown, every attempt:
 * a transient failure the worker cannot retry its way out of. The set is the test's to change between runs.
 */
export function unavailableKeys(unavailable: ReadonlySet<string>): S3rverMiddleware {
  return async (ctx, next) => {
    const key = decodeURIComponent(ctx.path).split('/').slice(2).join('/');
    if (ctx.method !== 'GET' || !unavailable.has(key)) return next();
    ctx.status = 503;
    ctx.type = 'application/xml';
    ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';
  };
}

/** Appends `<METHOD> <bucket-relative key>` (a listing: `LIST <prefix>`) for every request s3rver gets: what a run read and wrote. */
export function requestLog(requests: string[]): S3rverMiddleware {
  return async (ctx, next) => {
    const key = decodeURIComponent(ctx.path).split('/').slice(2).join('/');
    const prefix = ctx.query.prefix;
    requests.push(key === '' && ctx.method === 'GET' && typeof prefix === 'string' ? `LIST ${prefix}` : `${ctx.method} ${key}`);
    await next();
  };
}

export function buildWorkerBundle(): void {
  execFileSync(process.execPath, [join(REPO_ROOT, 'task-image', 'build.mjs')], { stdio: 'inherit' });
}

export interface WorkerRun {
  exitCode: number | null;
  /** Every stdout line, parsed: the worker logs only JSON. */
  logs: Array<Record<string, unknown>>;
  stderr: string;
}

export interface WorkerStart {
  pid: number;
  done: Promise<WorkerRun>;
  /** Resolves at the first log line with this event. */
  waitForEvent(event: string): Promise<Record<string, unknown>>;
  kill(signal: NodeJS.Signals): void;
}

/** Runs the bundled worker as the image does: same Node flags, a child process, configured by environment only. */
export function startWorker(endpoint: string, jobEnv: Record<string, string>): WorkerStart {
  const child = spawn(process.execPath, [...WORKER_NODE_FLAGS, WORKER_BUNDLE], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
      AWS_CONFIG_FILE: '/nonexistent/aws-config',
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
      AWS_ENDPOINT_URL_S3: endpoint,
      ...jobEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  const waiters: Array<{ event: string; resolve: (line: Record<string, unknown>) => void }> = [];
  let stdoutRest = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    const parts = (stdoutRest + text).split('\n');
    stdoutRest = parts.pop() ?? '';
    for (const part of parts) {
      const line = JSON.parse(part) as Record<string, unknown>;
      logs.push(line);
      for (const waiter of waiters.filter((candidate) => candidate.event === line.event)) waiter.resolve(line);
    }
  });
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const done = new Promise<WorkerRun>((resolveRun, rejectRun) => {
    child.on('error', rejectRun);
    child.on('close', (exitCode) => {
      if (stdoutRest.trim()) logs.push(JSON.parse(stdoutRest) as Record<string, unknown>);
      resolveRun({ exitCode, logs, stderr });
    });
  });
  return {
    pid: child.pid!,
    done,
    waitForEvent(event) {
      const seen = logs.find((line) => line.event === event);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolveEvent, rejectEvent) => {
        waiters.push({ event, resolve: resolveEvent });
        done.then(() => rejectEvent(new Error(`worker exited without logging "${event}"`)));
      });
    },
    kill: (signal) => child.kill(signal),
  };
}

export function runWorker(endpoint: string, jobEnv: Record<string, string>): Promise<WorkerRun> {
  return startWorker(endpoint, jobEnv).done;
}
