import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    pool: 'forks',
    // Sized for a busy machine (two cores shared with other work): waits in the tests are on
    // conditions, so a healthy run is as fast as ever; only a stuck one takes longer to fail.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Two cores: more workers than that only adds contention with PostgreSQL and the emulator.
    maxWorkers: 2,
  },
});
