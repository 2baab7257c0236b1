/** `npm run bench:proxy`: the balancer's data plane against a raw undici proxy, then the cost of a routing decision. */
import { availableParallelism, loadavg } from "node:os"
import { stopAll, stopChildrenOnExit } from "../../src/process/children.ts"
import { runHttp } from "./http.ts"
import { startLimitTargets } from "./limits.ts"
import { parseOptions } from "./options.ts"
import { runRouting } from "./routing.ts"
import { startTargets } from "./targets.ts"

const started = performance.now()
stopChildrenOnExit()

const loadAverage = () =>
  loadavg()
    .map((n) => n.toFixed(2))
    .join(" ")

const main = async () => {
  const options = parseOptions(process.argv.slice(2))
  if (options === undefined) return
  // The machine is often shared: the load before the run says how far to trust its numbers.
  console.log(`node ${process.version}, ${availableParallelism()} CPUs, load average ${loadAverage()}`)
  if (loadavg()[0]! > availableParallelism()) {
    console.log("warning: the CPUs are already busy with something else; expect noisy, unfair numbers")
  }
  if (options.only !== "routing") {
    const overrides = Object.entries(options.lbEnv).map(([k, v]) => `${k}=${v}`)
    console.log(
      "balancers: REPLICAS, LB_HOST, LB_PORT, LB_ALGORITHM set; everything else " +
        (overrides.length === 0 ? "at its default" : `at its default except ${overrides.join(" ")}`),
    )
    let stopLimits: (() => Promise<void>) | undefined
    const targets = await startTargets(
      options.algorithms,
      options.workers,
      options.lbEnv,
      options.limits
        ? async (origins) => {
            const limits = await startLimitTargets(origins)
            stopLimits = limits.stop
            return limits.targets
          }
        : undefined,
    )
    await runHttp(targets, options.rounds, {
      connections: options.connections,
      durationS: options.durationS,
      warmupS: options.warmupS,
    })
    // The routing micro-benchmark should not share the CPU with idle-but-polling balancers.
    await stopAll()
    await stopLimits?.()
  }
  if (options.only !== "http") await runRouting(options.picks)
}

try {
  await main()
} catch (error) {
  console.error(`bench:proxy failed: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
} finally {
  await stopAll()
  const seconds = ((performance.now() - started) / 1000).toFixed(1)
  console.log(`\ntotal runtime ${seconds} s (load average now ${loadAverage()})`)
}
