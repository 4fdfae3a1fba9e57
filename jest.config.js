/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }] },
  // Each test file starts its own throw-away Redis and NATS; two at a time suits a 2-core machine.
  maxWorkers: 2,
  testTimeout: 60000,
  // The default output, then the fault and hostile-input table (fault or input | what happened | pass).
  reporters: ['default', '<rootDir>/test/faults/summary-reporter.js'],
  // A test that leaks a connection or a child process keeps jest alive; this makes it say so.
  detectOpenHandles: false,
  forceExit: false,
};
