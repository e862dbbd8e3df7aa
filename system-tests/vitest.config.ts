import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**'],
    testTimeout: 120_000,
    hookTimeout: 20 * 60_000, // building images from scratch takes minutes
    pool: 'forks',
    // The image build and the stack tests each use the whole machine.
    fileParallelism: false,
  },
});
