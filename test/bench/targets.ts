/** Starts what the HTTP benchmark measures: the backends, the raw yardstick proxy and one balancer per algorithm. */
import { fileURLToPath } from "node:url"
import {
  type Child,
  firstMessage,
  freePorts,
  startChild,
  untilAnswers,
} from "../../deploy/compare/processes.ts"
import type { Algorithm } from "../../src/domain/Algorithm.ts"

/** tsx compiles on start and two cores are shared: generous, but a hung child still ends the run. */
const READY_TIMEOUT_MS = 60_000

export interface Target {
  readonly name: string
  readonly url: string
  /** Whether the target is a balancer (it then answers the balancer's `/metrics`). */
  readonly balancer: boolean
  /** The process that serves `url` itself: the proxy's, or the backends' for `direct`. */
  readonly pid: number | undefined
}

const entry = (file: string) => fileURLToPath(new URL(file, import.meta.url))

const startBalancer = async (
  algorithm: Algorithm,
  port: number,
  origins: ReadonlyArray<string>,
  extraEnv: Record<string, string>,
): Promise<Target> => {
  const child = startChild(`balancer (${algorithm})`, "src/main.ts", {
    REPLICAS: origins.join(","),
    LB_HOST: "127.0.0.1",
    LB_PORT: String(port),
    LB_ALGORITHM: algorithm,
    ...extraEnv,
  })
  const url = `http://127.0.0.1:${port}/`
  await untilAnswers(child, url, READY_TIMEOUT_MS)
  return { name: algorithm, url, balancer: true, pid: child.process.pid }
}

const startRaw = async (origins: ReadonlyArray<string>): Promise<Target> => {
  const child: Child = startChild("raw proxy", entry("./raw-proxy.ts"), { BENCH_BACKENDS: origins.join(",") })
  const port = await firstMessage<number>(child, READY_TIMEOUT_MS)
  const url = `http://127.0.0.1:${port}/`
  await untilAnswers(child, url, READY_TIMEOUT_MS)
  return { name: "raw", url, balancer: false, pid: child.process.pid }
}

/** Raw, direct, then the balancers: the order of the summary table (http.ts rotates it per round). */
export const startTargets = async (
  algorithms: ReadonlyArray<Algorithm>,
  lbEnv: Record<string, string>,
): Promise<Array<Target>> => {
  const backends = startChild("backends", entry("./backends.ts"), {})
  const origins = await firstMessage<Array<string>>(backends, READY_TIMEOUT_MS)
  const direct: Target = { name: "direct", url: `${origins[0]}/`, balancer: false, pid: backends.process.pid }
  const ports = await freePorts("127.0.0.1", algorithms.length)
  const proxies = await Promise.all([
    startRaw(origins),
    ...algorithms.map((algorithm, i) => startBalancer(algorithm, ports[i]!, origins, lbEnv)),
  ])
  const [raw, ...balancers] = proxies
  return [raw!, direct, ...balancers]
}
