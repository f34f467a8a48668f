/**
 * Memory benchmark: the worker must stream. For each input kind, generates a 200 MiB object,
 * uploads it to a local s3rver, runs the bundled worker on it as a child process and reports its
 * peak RSS two ways: VmHWM polled from /proc/<pid>/status, and the worker's own getrusage maxRSS.
 * Fails (exit 1) if any peak reaches 150 MiB or the result does not cover the whole object.
 * Usage: npm run bench:worker [-- --mib 200 --kinds jsonl,csv,json,bin]
 */
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { startLocalS3, startWorker, type LocalS3, type WorkerRun } from '../testing/s3-harness';
import { EXIT_CODES } from '../src/exit-codes';

const PEAK_RSS_LIMIT_MIB = 150;
const MIB = 1024 * 1024;

type Kind = 'jsonl' | 'csv' | 'json' | 'bin';

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : process.argv[index + 1];
}

/** Deterministic content of about `bytes` bytes, built line by line (a ~1 MiB buffer at a time). */
function* generate(kind: Kind, bytes: number): Generator<Buffer> {
  let written = 0;
  let row = 0;
  const batch: string[] = [];
  let batchBytes = 0;
  const flush = () => {
    const buffer = Buffer.from(batch.join(''));
    batch.length = 0;
    batchBytes = 0;
    written += buffer.length;
    return buffer;
  };
  const push = (text: string) => {
    batch.push(text);
    batchBytes += text.length;
  };
  if (kind === 'bin') {
    let seed = 1;
    while (written < bytes) {
      const chunk = Buffer.alloc(Math.min(MIB, bytes - written));
      for (let index = 0; index < chunk.length; index++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        chunk[index] = seed >>> 24;
      }
      written += chunk.length;
      yield chunk;
    }
    return;
  }
  if (kind === 'csv') push('id,user,amount,comment\n');
  if (kind === 'json') push('[\n');
  while (written + batchBytes < bytes) {
    row++;
    const user = `user-${(row * 7919) % 100_000}`;
    const amount = ((row * 31) % 100_000) / 100;
    if (kind === 'jsonl') push(`{"id":${row},"user":"${user}","amount":${amount},"tags":["a","b"],"ok":true}\n`);
    else if (kind === 'json') push(`${row > 1 ? ',' : ''}{"id":${row},"user":"${user}","amount":${amount},"nested":{"ok":true}}\n`);
    else push(`${row},${user},${amount},"quoted, with ""quotes"""\n`);
    if (batchBytes >= MIB) yield flush();
  }
  if (kind === 'json') push(']\n');
  yield flush();
}

async function writeObjectFile(path: string, kind: Kind, bytes: number): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  const file = createWriteStream(path);
  for (const chunk of generate(kind, bytes)) {
    hash.update(chunk);
    if (!file.write(chunk)) await once(file, 'drain');
  }
  file.end();
  await once(file, 'finish');
  return { size: statSync(path).size, sha256: hash.digest('hex') };
}

/** Highest VmHWM (KiB) seen in /proc/<pid>/status until the process exits. */
function pollPeakRss(pid: number): { stop(): number } {
  let peakKiB = 0;
  const sample = () => {
    try {
      const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (match) peakKiB = Math.max(peakKiB, Number(match[1]));
    } catch {
      // The process has exited; keep the last reading.
    }
  };
  sample();
  const timer = setInterval(sample, 10);
  return {
    stop() {
      clearInterval(timer);
      return peakKiB;
    },
  };
}

const BUCKET = 'sluice-bench';

async function main(): Promise<void> {
  const targetMiB = Number(option('mib', '200'));
  const kinds = option('kinds', 'jsonl,csv,json,bin').split(',') as Kind[];
  const nodeOptions = option('node-options', '');
  const workDir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  const s3 = await startLocalS3([BUCKET]);
  const rows: string[] = [];
  let failed = false;
  try {
    for (const kind of kinds) {
      const { row, ok } = await benchKind(s3, kind, { targetMiB, nodeOptions, workDir });
      failed ||= !ok;
      rows.push(row);
      console.log(row);
    }
  } finally {
    await s3.close();
    rmSync(workDir, { recursive: true, force: true });
  }
  console.log(`\nworker peak RSS, node ${process.version}, ${process.platform}/${process.arch}, limit ${PEAK_RSS_LIMIT_MIB} MiB`);
  console.log('kind    size MiB  VmHWM MiB  self MiB     s   MiB/s   records  verdict');
  for (const row of rows) console.log(row);
  if (failed) process.exit(1);
}

interface BenchOptions {
  targetMiB: number;
  /** NODE_OPTIONS for the worker; empty for none. */
  nodeOptions: string;
  workDir: string;
}

/** One input kind: upload, run the worker, check its result covers the object; the table row and the verdict. */
async function benchKind(s3: LocalS3, kind: Kind, options: BenchOptions): Promise<{ row: string; ok: boolean }> {
  const key = `incoming/bench.${kind}`;
  const { size, sha256 } = await uploadObject(s3, kind, key, options);
  const { run, vmHwmMiB, seconds } = await runWorkerMeasured(s3.endpoint, kind, key, options.nodeOptions);

  const finished = run.logs.find((line) => line.event === 'job-finished');
  const selfReportedMiB = Number(finished?.peakRssMiB ?? NaN);
  const response = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `results/${key}.json` }));
  const result = JSON.parse(await response.Body!.transformToString()) as {
    output: { bytes: number; sha256: string; lines: number; structure?: { valid: boolean; records: number } };
  };
  const covered = result.output.bytes === size && result.output.sha256 === sha256;
  const peakMiB = Math.max(vmHwmMiB, selfReportedMiB);
  const ok = run.exitCode === EXIT_CODES.ok && covered && peakMiB < PEAK_RSS_LIMIT_MIB;
  const row = [
    kind.padEnd(5),
    (size / MIB).toFixed(1).padStart(7),
    vmHwmMiB.toFixed(1).padStart(10),
    selfReportedMiB.toFixed(1).padStart(12),
    seconds.toFixed(1).padStart(6),
    (size / MIB / seconds).toFixed(0).padStart(6),
    String(result.output.structure?.records ?? '-').padStart(9),
    ok ? 'ok' : `FAIL (exit ${run.exitCode}, covered ${covered})`,
  ].join('  ');
  return { row, ok };
}

/** Generates the object in a temp file, uploads it and removes the file: the size and hash the result must match. */
async function uploadObject(s3: LocalS3, kind: Kind, key: string, { targetMiB, workDir }: BenchOptions): Promise<{ size: number; sha256: string }> {
  const path = join(workDir, `bench.${kind}`);
  const { size, sha256 } = await writeObjectFile(path, kind, targetMiB * MIB);
  await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: createReadStream(path), ContentLength: size }));
  rmSync(path);
  return { size, sha256 };
}

/** Runs the worker on the key, polling its peak RSS: how it exited, that peak, and the wall time. */
async function runWorkerMeasured(
  endpoint: string,
  kind: Kind,
  key: string,
  nodeOptions: string,
): Promise<{ run: WorkerRun; vmHwmMiB: number; seconds: number }> {
  const startedAt = process.hrtime.bigint();
  const worker = startWorker(endpoint, {
    BUCKET,
    KEY: key,
    JOB_ID: `bench-${kind}`,
    RESULTS_PREFIX: 'results/',
    // Lets a run try V8 flags, e.g. --node-options '--max-semi-space-size=4'.
    ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
  });
  const poller = pollPeakRss(worker.pid);
  const run = await worker.done;
  const vmHwmMiB = poller.stop() / 1024;
  const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
  return { run, vmHwmMiB, seconds };
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
