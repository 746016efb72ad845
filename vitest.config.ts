import { defineConfig } from 'vitest/config';

// Unit tests run in parallel; suites that start real daemons (sshd, dockerd, swarms in network
// namespaces) live under test/integration/ and run one file at a time (see the "integration" project),
// after the unit tests (sequence.groupOrder), so timing-sensitive daemons never share the cores with them.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          sequence: { groupOrder: 0 },
          include: ['test/**/*.test.ts'],
          exclude: ['test/integration/**'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'integration',
          sequence: { groupOrder: 1 },
          include: ['test/integration/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 900_000,
        },
      },
    ],
  },
});
