/**
 * The tests that run against a stage applied on moto by `npm run verify:terraform` (which sets SLUICE_ON_MOTO to
 * the applied stage's context). Not part of `npm test`: they need the applied stage.
 */
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__/on-moto'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' } }] },
  testTimeout: 120000,
  maxWorkers: 1,
};
