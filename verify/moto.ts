/**
 * moto (getmoto/moto 5.2.1, python3) as an AWS independent of sluice, in server mode, started through
 * verify/moto_launcher.py, which bridges the gaps listed there (each moto's, not sluice's). TLS on: buckets
 * sluice deploys deny plain HTTP, and that policy must hold against the emulator too.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { NodeHttpHandler } from '@smithy/node-http-handler';

const MOTO_VERSION = '5.2.1';
const LAUNCHER = join(__dirname, 'moto_launcher.py');

export interface MotoServer {
  readonly endpoint: string;
  readonly accountId: string;
  readonly region: string;
  /** SDK client options that reach this server (its certificate is self-signed). */
  clientConfig(): {
    endpoint: string;
    region: string;
    credentials: { accessKeyId: string; secretAccessKey: string };
    requestHandler: NodeHttpHandler;
    forcePathStyle: boolean;
  };
  stop(): Promise<void>;
}

/** Says plainly what is missing, with the command that installs it. */
function checkMotoInstalled(python = process.env.SLUICE_PYTHON ?? 'python3'): void {
  const probe = spawnSync(python, ['-c', 'import moto, sys; sys.stdout.write(moto.__version__)'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(`moto is not installed for ${python}: python3 -m pip install "moto[server]==${MOTO_VERSION}" (or set SLUICE_PYTHON)`);
  }
  if (probe.stdout.trim() !== MOTO_VERSION) {
    throw new Error(
      `moto ${probe.stdout.trim()} is installed; these checks are written against ${MOTO_VERSION}: python3 -m pip install "moto[server]==${MOTO_VERSION}"`,
    );
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export const TEST_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };

export async function startMoto(options: {
  accountId: string;
  region: string;
  log?: (line: string) => void;
  logFile?: string;
  fargateVcpuQuota?: number;
}): Promise<MotoServer> {
  checkMotoInstalled();
  const python = process.env.SLUICE_PYTHON ?? 'python3';
  const port = await freePort();
  const endpoint = `https://127.0.0.1:${port}`;
  // Its request log goes to a file, not a pipe: the caller may block on spawnSync (terraform) for minutes, and a
  // full pipe would stop moto mid-request.
  const logFile = options.logFile ?? join(mkdtempSync(join(tmpdir(), 'sluice-moto-')), 'moto.log');
  const fd = openSync(logFile, 'w');
  const child: ChildProcess = spawn(python, [LAUNCHER, '-H', '127.0.0.1', '-p', String(port), '-s'], {
    env: {
      ...process.env,
      MOTO_ACCOUNT_ID: options.accountId,
      PYTHONUNBUFFERED: '1',
      ...(options.fargateVcpuQuota ? { MOTO_FARGATE_VCPU_QUOTA: String(options.fargateVcpuQuota) } : {}),
    },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const output = () => readFileSync(logFile, 'utf8').slice(-20_000);
  const agent = new Agent({ rejectUnauthorized: false, keepAlive: true, maxSockets: 256 });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto exited ${child.exitCode} before it answered:\n${output()}`);
    if (await answers(endpoint, agent)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`moto did not answer on ${endpoint} within 30 s:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  options.log?.(`  moto ${MOTO_VERSION} for account ${options.accountId} on ${endpoint} (log: ${logFile})`);
  const requestHandler = new NodeHttpHandler({ httpsAgent: agent });
  return {
    endpoint,
    accountId: options.accountId,
    region: options.region,
    clientConfig: () => ({ endpoint, region: options.region, credentials: TEST_CREDENTIALS, requestHandler, forcePathStyle: true }),
    stop: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
      }),
  };
}

async function answers(endpoint: string, agent: Agent): Promise<boolean> {
  const { request } = await import('node:https');
  return new Promise((resolve) => {
    const req = request(`${endpoint}/moto-api/data.json`, { agent, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}
