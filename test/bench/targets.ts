/** Starts what the HTTP benchmark measures: the backends, the raw yardstick proxy and one balancer per algorithm. */
import { fileURLToPath } from "node:url"
import type { Algorithm } from "../../src/domain/Algorithm.ts"
import { spawnBalancer } from "../../src/process/balancer.ts"
import { type Child, startChild } from "../../src/process/child.ts"
import { nextMessage, untilAnswers, untilLogged } from "../../src/process/wait.ts"

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

interface StartOptions {
  /** The bundle `npm start` runs, rather than the sources through tsx. */
  readonly bundled?: boolean
  /** After the name: `lease ×2 TLS`. */
  readonly suffix?: string
  /** `https` when the environment gives it TLS_CERT_FILE and TLS_KEY_FILE. */
  readonly scheme?: "http" | "https"
}

/** A balancer with `algorithm` and `workers` processes, named `lease` or `lease ×2`. */
export const startBalancer = async (
  algorithm: Algorithm,
  workers: number,
  origins: ReadonlyArray<string>,
  extraEnv: Record<string, string>,
  { bundled = false, suffix = "", scheme = "http" }: StartOptions = {},
): Promise<Target> => {
  const name = `${workers === 1 ? algorithm : `${algorithm} ×${workers}`}${suffix}`
  const child = await spawnBalancer(
    { REPLICAS: origins.join(","), LB_ALGORITHM: algorithm, LB_WORKERS: String(workers), ...extraEnv },
    { name: `balancer (${name})`, readyTimeoutMs: READY_TIMEOUT_MS, bundled },
  )
  // Every worker listening, not only the first: worker ids count from 1 in the order they start.
  if (workers > 1) {
    const last = new RegExp(`message="load balancer listening".*\\bworker=${workers}\\b`)
    await untilLogged(child, last, `start its ${workers} workers`, READY_TIMEOUT_MS)
  }
  const url = `${scheme}://127.0.0.1:${child.port}/`
  await untilAnswers(child, url, READY_TIMEOUT_MS)
  return { name, url, balancer: true, pid: child.pid }
}

/** A proxy the balancer is measured against: `raw-proxy.ts`, or the same written on @effect/platform. */
export const startYardstick = async (
  name: string,
  file: string,
  origins: ReadonlyArray<string>,
): Promise<Target> => {
  const child: Child = startChild(`${name} proxy`, entry(file), { BENCH_BACKENDS: origins.join(",") })
  const port = await nextMessage<number>(child, "send its port", READY_TIMEOUT_MS)
  const url = `http://127.0.0.1:${port}/`
  await untilAnswers(child, url, READY_TIMEOUT_MS)
  return { name, url, balancer: false, pid: child.pid }
}

/** The three loopback backends every target ends at, and their origins. */
export const startBackends = async () => {
  const backends = startChild("backends", entry("./backends.ts"), {})
  const origins = await nextMessage<Array<string>>(backends, "send their origins", READY_TIMEOUT_MS)
  return { backends, origins }
}

/**
 * Raw, direct, the Effect platform proxy, then the balancers: the order of the summary table (http.ts
 * rotates it per round).
 */
export const startTargets = async (
  algorithms: ReadonlyArray<Algorithm>,
  workers: ReadonlyArray<number>,
  lbEnv: Record<string, string>,
  /** Extra targets over the same backends (`--limits`). */
  startMore?: (origins: ReadonlyArray<string>) => Promise<ReadonlyArray<Target>>,
): Promise<Array<Target>> => {
  const { backends, origins } = await startBackends()
  const direct: Target = { name: "direct", url: `${origins[0]}/`, balancer: false, pid: backends.pid }
  const [raw, effectPlatform, ...balancers] = await Promise.all([
    startYardstick("raw", "./raw-proxy.ts", origins),
    startYardstick("effect-platform", "./effect-proxy.ts", origins),
    ...algorithms.flatMap((algorithm) =>
      workers.map((count) => startBalancer(algorithm, count, origins, lbEnv)),
    ),
  ])
  const more = startMore === undefined ? [] : await startMore(origins)
  return [raw!, direct, effectPlatform!, ...balancers, ...more]
}
