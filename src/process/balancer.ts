/** The balancer run as a child process (`src/main.ts`), as tests, benchmarks and the comparison need it. */
import { fileURLToPath } from "node:url"
import { type Child, type Exited, type NodeOptions, startChild, startProgram } from "./child.ts"
import { untilLogged } from "./wait.ts"

const entry = fileURLToPath(new URL("../main.ts", import.meta.url))
/** What `npm run build` writes, and `npm start` and the images run. */
const bundle = fileURLToPath(new URL("../../dist/load-balancer.mjs", import.meta.url))
/** The environment `npm start` and the images add: glibc's trim threshold, fixed (README, "Build"). */
export const BUNDLE_ENV = { MALLOC_TRIM_THRESHOLD_: "131072" }

/** Loopback only, on a port of the system's choosing; the caller's variables come on top. */
const defaults = { LB_HOST: "127.0.0.1", LB_PORT: "0" }

/** Logged once the proxy is bound (logfmt, as launch.ts sets): with LB_PORT=0, the port is only there. */
const LISTENING = /message="load balancer listening".*\baddress=([\d.]+):(\d+)/

/** How long `close` waits after SIGTERM: an idle balancer exits at once, so past this it is stuck. */
const CLOSE_GRACE_MS = 10_000

export interface BalancerProcess extends Child {
  /** `http://HOST:PORT`, as the balancer logged it. */
  readonly url: string
  readonly port: number
  /** SIGTERM, and a failure when the balancer had to be killed for not exiting within 10 s. */
  readonly close: () => Promise<void>
}

export interface BalancerOptions extends Pick<NodeOptions, "nodeOptions"> {
  /** Names it in errors; `balancer` by default. */
  readonly name?: string
  /** tsx compiles on start, and the machine may be busy: 30 s by default. */
  readonly readyTimeoutMs?: number
  /** Runs the bundle (`npm run build` first) as `npm start` does, instead of the sources through tsx. */
  readonly bundled?: boolean
}

const start = (env: Record<string, string>, { name = "balancer", nodeOptions, bundled }: BalancerOptions) =>
  bundled === true
    ? startProgram(name, process.execPath, [...(nodeOptions ?? []), bundle], {
        ...defaults,
        ...BUNDLE_ENV,
        ...env,
      })
    : startChild(name, entry, { ...defaults, ...env }, nodeOptions === undefined ? {} : { nodeOptions })

/** Starts the balancer with `env` and waits until it listens. */
export const spawnBalancer = async (
  env: Record<string, string>,
  options: BalancerOptions = {},
): Promise<BalancerProcess> => {
  const child = start(env, options)
  try {
    const [, host, port] = await untilLogged(
      child,
      LISTENING,
      "log its listening address",
      options.readyTimeoutMs ?? 30_000,
    )
    const close = async () => {
      if (child.process.exitCode !== null || child.process.signalCode !== null) return
      const exit = await child.stop(CLOSE_GRACE_MS)
      if (exit.signal === "SIGKILL") {
        throw new Error(`${child.name} had not exited ${CLOSE_GRACE_MS} ms after SIGTERM, and was killed`)
      }
    }
    return { ...child, url: `http://${host}:${port}`, port: Number(port), close }
  } catch (error) {
    await child.stop(1_000)
    throw error
  }
}

/** Runs the balancer with `env` until it exits by itself: a failure, and killed, after `timeoutMs`. */
export const runBalancerToExit = async (env: Record<string, string>, timeoutMs = 30_000): Promise<Exited> => {
  const child = start(env, {})
  const timer = setTimeout(() => child.process.kill("SIGKILL"), timeoutMs)
  const exit = await child.exited.finally(() => clearTimeout(timer))
  if (exit.signal === "SIGKILL") {
    throw new Error(
      `${child.name} did not exit by itself within ${timeoutMs} ms with ${JSON.stringify(env)}\n` +
        `stdout: ${exit.stdout}\nstderr: ${exit.stderr}`,
    )
  }
  return exit
}
