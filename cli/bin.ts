/**
 * The `sluice` command as one file: `npm run bundle:cli` bundles this (and everything it imports) into
 * dist/sluice.cjs, which the rollout's smoke job runs with node alone — no npm install beside a credential.
 */
import { run } from './main';

void run(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
