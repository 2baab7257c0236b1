import { defineConfig } from "vitest/config"

// The fault-injection suite (`npm run test:faults`): real processes, real sockets and real load, so one
// file at a time, and longer limits than the default suite's.
export default defineConfig({
  test: {
    include: ["test/faults/**/*.test.ts"],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
})
