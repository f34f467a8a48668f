import { workerImageUri } from '../../task-image/image-reference';

const repository = '123456789012.dkr.ecr.eu-west-1.amazonaws.com/sluice-task';
const digest = `sha256:${'ab'.repeat(32)}`;

test('a pinned digest wins over a tag: the task runs exactly that image', () => {
  expect(workerImageUri({ repository, digest, tag: 'v1' }, 'environments/prod.ts')).toBe(`${repository}@${digest}`);
});

test('a tag alone is used as a tag', () => {
  expect(workerImageUri({ repository, tag: '2026-11-28.1' }, 'environments/dev.ts')).toBe(`${repository}:2026-11-28.1`);
});

test.each([
  [{ repository: 'sluice-task', digest }, 'image.repository "sluice-task" must be'],
  [{ repository, digest: 'sha256:abc' }, 'image.digest "sha256:abc" must be sha256:<64 lowercase hex>'],
  [{ repository, tag: 'has space' }, 'image.tag "has space" is not a valid image tag'],
  [{ repository }, 'image needs a digest (preferred) or a tag'],
])('rejects %j, naming the stage and the field', (image, message) => {
  expect(() => workerImageUri(image, 'environments/stg.ts')).toThrow(`environments/stg.ts: ${message}`);
});
