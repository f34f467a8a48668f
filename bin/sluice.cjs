#!/usr/bin/env node
// `npx sluice …` in this repository: runs cli/main.ts through tsx, as the npm scripts run TypeScript.
require('tsx/cjs');
const { run } = require('../cli/main.ts');
run(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
