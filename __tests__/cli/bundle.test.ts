/**
 * The CLI as the rollout's smoke job runs it: `npm run bundle:cli` (esbuild) into one file, run with node alone.
 * A module that runs itself when it is the main module would run again inside the bundle, where every module is.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'sluice-bundle-'));
const bundle = join(dir, 'sluice.cjs');

beforeAll(() => {
  const script = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['bundle:cli'];
  expect(script).toContain('--outfile=dist/sluice.cjs');
  const [command, ...args] = script.replace('--outfile=dist/sluice.cjs', `--outfile=${bundle}`).split(' ');
  execFileSync(join(ROOT, 'node_modules', '.bin', command), args, { cwd: ROOT });
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sluice = (...args: string[]) => spawnSync(process.execPath, [bundle, ...args], { encoding: 'utf8', env: { ...process.env, AWS_REGION: 'eu-west-1' } });

test('each command runs once: help is printed once', () => {
  const { stdout, status } = sluice('--help');
  expect(status).toBe(0);
  expect(stdout.match(/Usage: sluice/g)).toHaveLength(1);
  expect(stdout).toMatch(/\bsmoke\b/);
});

test('a bad stage is refused once, with the usage exit code, before any AWS call', () => {
  const { stderr, status } = sluice('smoke', '--stage', 'nosuchstage');
  expect(status).toBe(2);
  expect(stderr.match(/^sluice: /gm)).toHaveLength(1);
  expect(stderr).toMatch(/nosuchstage/);
});
