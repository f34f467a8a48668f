/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  // Run by npm run verify:terraform against a stage applied on moto (jest.moto.config.js).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/__tests__/on-moto/'],
  // swc strips types only; `npm run typecheck` (tsc --noEmit) is the one type check.
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' } }] },
  setupFilesAfterEnv: ['<rootDir>/__tests__/support/cdktf-matchers.ts'],
  testTimeout: 60000,
};
