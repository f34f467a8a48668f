// Bundles the worker into one file, dist/worker.js: the image then needs no node_modules.
// `--if-stale` skips the build when the bundle is newer than every source (for `npm run worker`).
import { build } from 'esbuild';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const imageDir = dirname(fileURLToPath(import.meta.url));
const outfile = join(imageDir, 'dist', 'worker.js');

function newestSourceTime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSourceTime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function bundleIsFresh() {
  try {
    const builtAt = statSync(outfile).mtimeMs;
    const inputs = [
      newestSourceTime(join(imageDir, 'src')),
      statSync(fileURLToPath(import.meta.url)).mtimeMs,
      statSync(join(imageDir, '..', 'package-lock.json')).mtimeMs,
    ];
    return inputs.every((time) => time < builtAt);
  } catch {
    return false;
  }
}

if (process.argv.includes('--if-stale') && bundleIsFresh()) process.exit(0);

await build({
  entryPoints: [join(imageDir, 'src', 'main.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  legalComments: 'external',
  logLevel: 'warning',
});
