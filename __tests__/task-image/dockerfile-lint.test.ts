import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseInstructions, projectRules } from '../../task-image/scripts/lint-dockerfile';
import { WORKER_NODE_FLAGS } from '../../task-image/worker-node-flags';
import { REPO_ROOT } from '../../task-image/testing/s3-harness';

const dockerfile = readFileSync(join(REPO_ROOT, 'task-image', 'Dockerfile'), 'utf8');
const problemsIn = (content: string) => projectRules(parseInstructions(content)).map((problem) => problem.message);

test('the task image Dockerfile passes the project rules', () => {
  expect(problemsIn(dockerfile)).toEqual([]);
});

test.each([
  ['a floating base image', (text: string) => text.replace(/node:24\.\d+\.\d+-bookworm-slim/, 'node:lts'), 'is not pinned'],
  ['running as root', (text: string) => text.replace('USER node', 'USER root'), 'non-root USER'],
  ['no /tmp volume', (text: string) => text.replace('VOLUME ["/tmp"]', ''), 'VOLUME /tmp'],
  ['npm as the command', (text: string) => text.replace(/CMD \[.*\]/, 'CMD ["npm", "start"]'), 'run node directly'],
  ['no init', (text: string) => text.replace(/ENTRYPOINT \[.*\]/, 'ENTRYPOINT ["node"]'), 'init (tini)'],
  ['an unpinned apt package', (text: string) => text.replace('tini=0.19.0-1+b3', 'tini'), 'not pinned (name=version)'],
])('catches %s', (_, mutate, expected) => {
  const mutated = mutate(dockerfile);
  expect(mutated).not.toBe(dockerfile);
  expect(problemsIn(mutated)).toContainEqual(expect.stringContaining(expected));
});

test('the image and `npm run worker` start node with the same flags as the tests and benchmark', () => {
  const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)?.[1];
  expect(JSON.parse(cmd ?? 'null')).toEqual(['node', ...WORKER_NODE_FLAGS, '/app/dist/worker.js']);
  const scripts = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  expect(scripts.worker).toContain(`node ${WORKER_NODE_FLAGS.join(' ')} task-image/dist/worker.js`);
});
