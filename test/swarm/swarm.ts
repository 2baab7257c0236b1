/** Helpers for the Swarm end-to-end test: docker CLI, the balancer's views, bounded polls, load. */
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { waitFor as waitUntil } from "../support/wait.ts"

const run = promisify(execFile)

export const STACK = process.env.STACK ?? "swarmguard"
export const WEB = `${STACK}_web-stress`
export const LB_SERVICE = `${STACK}_load-balancer`
export const LB = process.env.SWARM_LB_URL ?? "http://127.0.0.1:8081"
export const AGENT = process.env.SWARM_AGENT_URL ?? "http://127.0.0.1:8082"

export const docker = async (...args: ReadonlyArray<string>): Promise<string> => {
  const { stdout } = await run("docker", [...args], { maxBuffer: 16 * 1024 * 1024, timeout: 170_000 })
  return stdout.trim()
}

export const log = (line: string): void => {
  process.stdout.write(`${line}\n`)
}

/** Polls like the loopback tests do, with the slower default interval a cluster warrants. */
export const waitFor = <A>(
  what: string,
  probe: () => Promise<A | undefined> | A | undefined,
  timeoutMs: number,
  intervalMs = 250,
): Promise<A> => waitUntil(what, probe, { timeoutMs, intervalMs })

export interface ReplicaView {
  /** In the balancer's zone or on its node (`LOCALITY`). */
  readonly local: boolean
  readonly id: string
  readonly name: string
  readonly origin: string
  readonly healthy: boolean
  readonly picks: number
  readonly metrics: null | {
    readonly cpu_percent: number
    readonly memory_percent: number
    readonly network_mbps: number
    readonly age_ms: number
    readonly fresh: boolean
  }
}

export const getJson = async <A>(url: string): Promise<A> => {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) })
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`)
  return (await res.json()) as A
}

export const replicas = (): Promise<ReadonlyArray<ReplicaView>> => getJson(`${LB}/_lb/replicas`)

/** The running containers of web-stress (full ids), from the Engine. */
export const webContainers = async (): Promise<ReadonlyArray<string>> => {
  const out = await docker(
    "ps",
    "--no-trunc",
    "--filter",
    `label=com.docker.swarm.service.name=${WEB}`,
    "--format",
    "{{.ID}}",
  )
  return out === "" ? [] : out.split("\n")
}

/** The hostname (= 12-character container id) of the replica that answered one GET through the balancer. */
export const whoAnswers = async (path = "/health"): Promise<string> => {
  const res = await fetch(`${LB}${path}`, { signal: AbortSignal.timeout(10_000) })
  const body = (await res.json()) as { hostname?: string }
  if (!res.ok || typeof body.hostname !== "string")
    throw new Error(`GET ${path}: ${res.status} ${JSON.stringify(body)}`)
  return body.hostname
}

/** Counts of answering hostnames over `count` sequential GETs. */
export const shares = async (count: number, path = "/health"): Promise<Map<string, number>> => {
  const seen = new Map<string, number>()
  for (let i = 0; i < count; i++) {
    const host = await whoAnswers(path)
    seen.set(host, (seen.get(host) ?? 0) + 1)
  }
  return seen
}

/** GET on 127.0.0.1:8080 inside a web-stress container (its port is not published). */
export const execGet = async (container: string, path: string): Promise<unknown> => {
  const script = `fetch('http://127.0.0.1:8080${path}').then(async r=>{const t=await r.text();if(!r.ok){console.error(r.status,t);process.exit(1)}console.log(t)},e=>{console.error(String(e));process.exit(1)})`
  return JSON.parse(await docker("exec", container, "node", "-e", script))
}

/** Waits until the service's tasks all run the desired count and the balancer sees `count` healthy replicas. */
export const waitConverged = async (count: number, timeoutMs: number): Promise<ReadonlyArray<ReplicaView>> =>
  waitFor(
    `${count} healthy replicas with fresh metrics in ${LB}/_lb/replicas`,
    async () => {
      const list = await replicas()
      const good = list.filter((r) => r.healthy && r.metrics?.fresh === true)
      if (list.length !== count || good.length !== count) return undefined
      const running = await webContainers()
      return running.length === count ? list : undefined
    },
    timeoutMs,
    500,
  )

export interface LoadResult {
  readonly ok: number
  readonly failed: number
  readonly failures: ReadonlyArray<string>
  readonly byHost: Map<string, number>
}

/** `workers` concurrent loops of GETs through the balancer for `durationMs`; counts every failure. */
export const load = async (
  durationMs: number,
  workers = 10,
  path = "/compute/pi?iterations=1000",
  stop: () => boolean = () => false,
): Promise<LoadResult> => {
  const end = Date.now() + durationMs
  let ok = 0
  let failed = 0
  const failures: Array<string> = []
  const byHost = new Map<string, number>()
  const worker = async () => {
    while (Date.now() < end && !stop()) {
      try {
        const res = await fetch(`${LB}${path}`, { signal: AbortSignal.timeout(15_000) })
        const text = await res.text()
        if (res.status >= 200 && res.status < 300) {
          ok++
          const host = (JSON.parse(text) as { hostname?: string }).hostname ?? "?"
          byHost.set(host, (byHost.get(host) ?? 0) + 1)
        } else {
          failed++
          if (failures.length < 20)
            failures.push(`${new Date().toISOString()} ${res.status} ${text.slice(0, 200)}`)
        }
      } catch (error) {
        failed++
        if (failures.length < 20)
          failures.push(`${new Date().toISOString()} ${String((error as Error).cause ?? error)}`)
      }
    }
  }
  await Promise.all(Array.from({ length: workers }, worker))
  return { ok, failed, failures, byHost }
}
