import { defineConfig } from "vitest/config"

// Only for `npm run test:swarm` (test/swarm/run.sh): the root config includes test/**/*.test.ts,
// and these files are named *.swarm.ts so that `npm test` never picks them up.
export default defineConfig({
  test: {
    root: new URL("../..", import.meta.url).pathname,
    include: ["test/swarm/**/*.swarm.ts"],
    fileParallelism: false,
    sequence: { concurrent: false },
    testTimeout: 180_000,
    hookTimeout: 180_000,
    reporters: ["verbose"],
  },
})
