/**
 * `npm run bench:peers`: SwarmGuard beside NGINX and HAProxy, in front of the same three loopback
 * replicas, measured in one run: each target in turn within a round, rounds repeated, medians kept.
 * SwarmGuard runs as `npm start` and the images run it (the bundle), with one worker and with
 * several, and its first algorithm again over TLS (HTTP/1.1 with keep-alive). NGINX is `least_conn`
 * with one worker process; HAProxy `leastconn` with its default threads (one per CPU); both
 * configured as the comparison configures them (deploy/compare/references.ts). The raw undici proxy
 * is the yardstick every ratio is taken against.
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { availableParallelism, loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { startReferences } from "../../deploy/compare/references.ts"
import { ALGORITHMS, type Algorithm } from "../../src/domain/Algorithm.ts"
import { makeSelfSigned } from "../../src/process/certificates.ts"
import { stopAll, stopChildrenOnExit } from "../../src/process/children.ts"
import { runHttp } from "./http.ts"
import { startBackends, startBalancer, startYardstick, type Target } from "./targets.ts"

const USAGE = `usage: npm run bench:peers -- [options]
  --rounds N        rounds over all targets (default 3)
  --duration S      seconds measured per target and round (default 5)
  --connections N   autocannon connections (default 32)
  --algorithms A,B  SwarmGuard's algorithms (default lease,adaptive)
  --workers N,M     SwarmGuard's LB_WORKERS values (default 1,2)`

/** The references' load-aware policy an operator would pick first; their random-two variants are in the comparison. */
const PEERS = new Set(["nginx least_conn", "haproxy leastconn"])

/** A certificate and key for this run, in a folder removed at exit. */
const selfSignedPair = async () => {
  const dir = mkdtempSync(join(tmpdir(), "swarmguard-peers-tls-"))
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }))
  const { certFile, keyFile } = await makeSelfSigned(dir)
  return { TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile }
}

const listOf = (text: string) => text.split(",").map((item) => item.trim())

const main = async () => {
  const { values } = parseArgs({
    options: {
      rounds: { type: "string", default: "3" },
      duration: { type: "string", default: "5" },
      connections: { type: "string", default: "32" },
      algorithms: { type: "string", default: "lease,adaptive" },
      workers: { type: "string", default: "1,2" },
      help: { type: "boolean", short: "h" },
    },
  })
  if (values.help) return console.log(USAGE)
  const [rounds, durationS, connections] = [values.rounds, values.duration, values.connections].map(Number)
  const algorithms = listOf(values.algorithms)
  const workers = listOf(values.workers).map(Number)
  if (![rounds, durationS, connections].every((n) => Number.isFinite(n) && n! > 0)) throw new Error(USAGE)
  if (algorithms.some((name) => !(ALGORITHMS as ReadonlyArray<string>).includes(name))) throw new Error(USAGE)
  if (workers.some((count) => !Number.isInteger(count) || count < 1)) throw new Error(USAGE)

  console.log(
    `node ${process.version}, ${availableParallelism()} CPUs, load average ${loadavg()[0]!.toFixed(2)}`,
  )
  const build = spawnSync("npm", ["run", "--silent", "build"], { stdio: "inherit" })
  if (build.status !== 0) throw new Error("npm run build failed")

  const { origins } = await startBackends()
  const { references, status } = await startReferences(origins.map((origin) => new URL(origin).host))
  for (const [program, { detail }] of Object.entries(status)) console.log(`${program}: ${detail}`)
  const peers: Array<Target> = references
    .filter(({ name }) => PEERS.has(name))
    .map(({ name, origin, pid }) => ({ name, url: `${origin}/`, balancer: false, pid }))
  // The first algorithm again over TLS (HTTP/1.1 with keep-alive: autocannon offers no ALPN).
  const tls = await selfSignedPair()
  const [raw, ...balancers] = await Promise.all([
    startYardstick("raw", "./raw-proxy.ts", origins),
    ...algorithms.flatMap((algorithm) =>
      workers.map((count) => startBalancer(algorithm as Algorithm, count, origins, {}, { bundled: true })),
    ),
    ...workers.map((count) =>
      startBalancer(algorithms[0] as Algorithm, count, origins, tls, {
        bundled: true,
        suffix: " TLS",
        scheme: "https",
      }),
    ),
  ])
  await runHttp([raw!, ...peers, ...balancers], rounds!, {
    connections: connections!,
    durationS: durationS!,
    warmupS: 1,
  })
}

stopChildrenOnExit()
try {
  await main()
} catch (error) {
  console.error(`bench:peers failed: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
} finally {
  await stopAll()
}
