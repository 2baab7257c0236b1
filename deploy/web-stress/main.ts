/** The web-stress workload's entry point: `npm run web-stress`, configured by PORT, HOST and friends. */
import type { AddressInfo } from "node:net"
import { availableParallelism, totalmem } from "node:os"
import { decodeConfig } from "./config.ts"
import { log } from "./log.ts"
import { createWorkloadServer } from "./server.ts"
import { Stress } from "./stress/controller.ts"
import { Sink } from "./stress/network.ts"

const NAME = "web-stress"
/** Docker waits 10 s between SIGTERM and SIGKILL: in-flight requests get most of that. */
const SHUTDOWN_GRACE_MS = 8_000

/** An expected failure at start: one line on stderr, exit 1, as the balancer and the agent do. */
const fail = (line: string): never => {
  process.stderr.write(`${NAME}: ${line}\n`)
  process.exit(1)
}

const decoded = decodeConfig(process.env)
const config = decoded.ok ? decoded.config : fail(decoded.error)

/** More than 100% per core cannot be burnt: a larger ask would only start idle threads. */
const maxCpuPercent = 100 * availableParallelism()
const stress = new Stress({ maxCpuPercent, networkTarget: config.networkTarget })
const sink = config.sinkPort === undefined ? undefined : new Sink()
const server = createWorkloadServer({
  name: config.name,
  workFactor: config.workFactor,
  stress,
  maxCpuPercent,
  maxMemoryMb: Math.floor(totalmem() / (1024 * 1024)),
  sink,
  errorShare: config.errorShare,
  loadReports: config.loadReports,
})

server.once("error", (error) => fail(`cannot listen on ${config.host}:${config.port}: ${error.message}`))
server.listen(config.port, config.host, () => {
  const { address, port } = server.address() as AddressInfo
  log("listening", {
    address,
    port,
    work_factor: config.workFactor,
    error_share: config.errorShare,
    load_reports: config.loadReports,
    network_target:
      config.networkTarget === undefined
        ? "loopback sink"
        : `${config.networkTarget.host}:${config.networkTarget.port}`,
  })
})

if (sink !== undefined && config.sinkPort !== undefined) {
  const sinkPort = config.sinkPort
  sink.listen(sinkPort, config.host).then(
    (address) => log("sink listening", { address: address.host, port: address.port }),
    (error: Error) =>
      fail(`cannot listen on ${config.host}:${sinkPort} (NETWORK_SINK_PORT): ${error.message}`),
  )
}

let stopping = false
const shutdown = (signal: NodeJS.Signals) => {
  // A second signal means "now": the operator has stopped waiting.
  if (stopping) process.exit(0)
  stopping = true
  log("shutting down", { signal })
  const force = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS)
  force.unref()
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  // Idle keep-alive connections would hold close() open until they time out.
  server.closeIdleConnections()
  Promise.all([closed, stress.close(), sink?.close()]).finally(() => {
    log("stopped")
    process.exit(0)
  })
}
process.on("SIGTERM", shutdown)
process.on("SIGINT", shutdown)
