/**
 * The workload's HTTP surface on a raw node:http server: it is the thing under test,
 * so a request costs the work it asks for and little else.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import { hostname } from "node:os"
import { pipeline, Readable } from "node:stream"
import { CPU_CLOCK, spendCpu } from "./cpu-time.ts"
import { Faults } from "./faults.ts"
import { LOAD_REPORT_HEADER, LoadReports } from "./load-report.ts"
import { log } from "./log.ts"
import { CpuSampler, RequestCounters } from "./metrics.ts"
import { BadParam, booleanParam, invalidParam, type NumberSpec, numberParam } from "./params.ts"
import type { Stress, StressRequest } from "./stress/controller.ts"
import { type JobKind, noLoad, type Resource } from "./stress/load.ts"
import type { Sink } from "./stress/network.ts"
import { monteCarloPi } from "./work.ts"

const MIB = 1024 * 1024
const DOWNLOAD_CHUNK = 64 * 1024
/** Random bytes, so a compressing hop in between cannot make downloads cheaper than they look. */
const DOWNLOAD_BLOCK = Buffer.from(
  Array.from({ length: DOWNLOAD_CHUNK }, () => Math.floor(Math.random() * 256)),
)
const MAX_NETWORK_MBPS = 10_000
const MAX_DURATION_S = 86_400
/** The most CPU time one `/compute/cpu` asks for (before WORK_FACTOR): ten seconds. */
const MAX_CPU_MS = 10_000

export interface WorkloadOptions {
  /** Sent as `X-Served-By` on every answer, so a client behind a balancer sees who served it. */
  readonly name: string
  readonly workFactor: number
  readonly stress: Stress
  /** 100 per core of this machine: more cannot be burnt. */
  readonly maxCpuPercent: number
  /** The machine's memory: a typo must not ask for more than exists. */
  readonly maxMemoryMb: number
  /** The public sink (NETWORK_SINK_PORT), when there is one. */
  readonly sink: Sink | undefined
  /** The share of /compute/* to fail at once from the start (ERROR_SHARE); `/fault/errors` changes it. */
  readonly errorShare: number
  /** Whether answers report this replica's load from the start (LOAD_REPORTS); `/load-reports` switches it. */
  readonly loadReports: boolean
}

interface Request {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly query: URLSearchParams
}

/** Answers that report this replica's load: the work a balancer spreads, and its health probes. */
const reportsLoad = (path: string) =>
  path.startsWith("/compute/") || path.startsWith("/download/") || path === "/health"

const seconds = (ms: number) => Math.round(ms) / 1000

/** `duration` and `ramp`, shared by every /stress/ endpoint; the ramp happens within the duration. */
const timing = (query: URLSearchParams): Pick<StressRequest, "rampMs" | "durationMs"> => {
  const duration = numberParam(query, "duration", {
    fallback: 60,
    min: 0,
    exclusiveMin: true,
    max: MAX_DURATION_S,
  })
  const ramp = numberParam(query, "ramp", { fallback: 0, min: 0, max: MAX_DURATION_S })
  if (ramp > duration) throw invalidParam("ramp", query.get("ramp")!, `at most duration (${duration} s)`)
  return { rampMs: ramp * 1000, durationMs: duration * 1000 }
}

/** A download's bytes, with `cpuWorkPerMib` Monte Carlo iterations spent on each MiB as it goes out. */
function* downloadChunks(bytes: number, cpuWorkPerMib: number): Generator<Buffer> {
  for (let left = bytes; left > 0; left -= DOWNLOAD_CHUNK) {
    const size = Math.min(DOWNLOAD_CHUNK, left)
    if (cpuWorkPerMib > 0) monteCarloPi(Math.round((cpuWorkPerMib * size) / MIB))
    yield size === DOWNLOAD_CHUNK ? DOWNLOAD_BLOCK : DOWNLOAD_BLOCK.subarray(0, size)
  }
}

const parseTarget = (target: string | undefined): URL | undefined => {
  try {
    return new URL(target ?? "/", "http://workload")
  } catch {
    return undefined
  }
}

export const createWorkloadServer = (options: WorkloadOptions): Server => {
  const { workFactor, stress } = options
  const startedAt = performance.now()
  const requests = new RequestCounters()
  const faults = new Faults(options.errorShare)
  const loadReports = new LoadReports({ enabled: options.loadReports })
  /** The answers that carry a load report, marked when their request arrives. */
  const reporting = new WeakSet<ServerResponse>()
  const cpu = new CpuSampler()
  const host = hostname()
  const uptime = () => seconds(performance.now() - startedAt)

  /**
   * Writes the head, with the load report where it belongs: its `rif` is the requests held at this
   * moment, this answer's own included, since the balancer counts it in flight until the body ends.
   */
  const writeHead = (res: ServerResponse, status: number, headers: Record<string, string | number>) => {
    const report = reporting.has(res) ? loadReports.header(requests.inFlightNow()) : undefined
    res.writeHead(status, report === undefined ? headers : { ...headers, [LOAD_REPORT_HEADER]: report })
  }

  const sendJson = (
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    const payload = JSON.stringify(body)
    writeHead(res, status, {
      ...headers,
      "content-type": "application/json",
      "content-length": Buffer.byteLength(payload),
    })
    res.end(payload)
  }

  const cpuSpec = { min: 0, max: options.maxCpuPercent }
  const memorySpec = { min: 0, max: options.maxMemoryMb }
  const networkSpec = { min: 0, max: MAX_NETWORK_MBPS }

  const started = (res: ServerResponse, job: { readonly id: number }) => {
    const status = stress.status()
    const described = status.jobs.find((entry) => entry.id === job.id)
    log("stress started", { job: described })
    sendJson(res, 200, { status: "started", job: described, stress: status })
  }

  /** `/stress/cpu`, `/memory`, `/network`: one resource, its current stress replaced by this job's. */
  const singleStress =
    (resource: Resource, kind: JobKind, param: string, spec: NumberSpec) =>
    ({ res, query }: Request): void => {
      const amount = numberParam(query, param, { ...spec, exclusiveMin: true })
      const target = { ...noLoad, [resource]: amount }
      started(res, stress.replace(resource, kind, { target, ...timing(query) }))
    }

  /** cpu, memory and network together, each optional; at least one must ask for something. */
  const mixedTarget = (query: URLSearchParams) => {
    const target = {
      cpuPercent: numberParam(query, "cpu", { ...cpuSpec, fallback: 0 }),
      memoryMb: numberParam(query, "memory", { ...memorySpec, fallback: 0 }),
      networkMbps: numberParam(query, "network", { ...networkSpec, fallback: 0 }),
    }
    if (target.cpuPercent === 0 && target.memoryMb === 0 && target.networkMbps === 0)
      throw new BadParam("cpu", "query parameters cpu, memory, network: at least one must be greater than 0")
    return target
  }

  const routes: Record<string, (request: Request) => void> = {
    "/health": ({ res }) => sendJson(res, 200, { status: "healthy", uptime: uptime(), hostname: host }),

    "/compute/pi": ({ res, query }) => {
      const iterations = numberParam(query, "iterations", {
        fallback: 1_000_000,
        min: 1,
        max: 1e9,
        integer: true,
      })
      const effective = Math.max(1, Math.round(iterations * workFactor))
      const begin = performance.now()
      // On the request's own thread, on purpose: a replica's capacity for these is its CPU.
      const pi = monteCarloPi(effective)
      sendJson(res, 200, {
        pi,
        iterations,
        work_factor: workFactor,
        effective_iterations: effective,
        duration_ms: Math.round((performance.now() - begin) * 1000) / 1000,
        hostname: host,
      })
    },

    "/compute/cpu": ({ res, query }) => {
      const ms = numberParam(query, "ms", { min: 0, exclusiveMin: true, max: MAX_CPU_MS })
      // On the request's own thread, like /compute/pi: a replica's capacity for these is its CPU.
      const spent = spendCpu(ms * workFactor)
      sendJson(res, 200, {
        cpu_ms: Math.round(spent.cpuMs * 1000) / 1000,
        wall_ms: Math.round(spent.wallMs * 1000) / 1000,
        ms,
        work_factor: workFactor,
        cpu_clock: CPU_CLOCK,
        hostname: host,
      })
    },

    "/download/data": ({ req, res, query }) => {
      const sizeMb = numberParam(query, "size_mb", { fallback: 1, min: 0, max: 10_240 })
      const cpuWork = numberParam(query, "cpu_work", { fallback: 0, min: 0, max: 1e8, integer: true })
      const bytes = Math.round(sizeMb * MIB)
      writeHead(res, 200, { "content-type": "application/octet-stream", "content-length": bytes })
      if (req.method === "HEAD") {
        res.end()
        return
      }
      // pipeline keeps to the client's pace and stops generating when the client goes away.
      pipeline(
        Readable.from(downloadChunks(bytes, cpuWork * workFactor), { objectMode: false }),
        res,
        () => {},
      )
    },

    "/stress/cpu": singleStress("cpuPercent", "cpu", "target", cpuSpec),
    "/stress/memory": singleStress("memoryMb", "memory", "target", memorySpec),
    "/stress/network": singleStress("networkMbps", "network", "bandwidth", networkSpec),

    "/stress/combined": ({ res, query }) => {
      const target = mixedTarget(query)
      started(res, stress.replaceAll("combined", { target, ...timing(query) }))
    },

    "/stress/incremental": ({ res, query }) => {
      const target = mixedTarget(query)
      started(res, stress.add("incremental", { target, ...timing(query) }))
    },

    "/stress/stop": ({ res }) => {
      const stopped = stress.stop()
      log("stress stopped", { jobs: stopped })
      sendJson(res, 200, { status: "stopped", stopped_jobs: stopped, stress: stress.status() })
    },

    "/stress/status": ({ res }) => sendJson(res, 200, stress.status()),

    "/fault/errors": ({ res, query }) => {
      const share = numberParam(query, "share", { min: 0, max: 1 })
      faults.setErrorShare(share)
      log("fault set", { error_share: share })
      sendJson(res, 200, { status: share === 0 ? "stopped" : "set", faults: faults.json() })
    },

    "/fault/stop": ({ res }) => {
      faults.stop()
      log("fault stopped")
      sendJson(res, 200, { status: "stopped", faults: faults.json() })
    },

    "/fault/status": ({ res }) => sendJson(res, 200, faults.json()),

    "/load-reports": ({ res, query }) => {
      if (query.has("enabled")) {
        loadReports.enabled = booleanParam(query, "enabled")
        log("load reports", { enabled: loadReports.enabled })
      }
      sendJson(res, 200, loadReports.json())
    },

    "/metrics": ({ res }) =>
      sendJson(res, 200, {
        hostname: host,
        pid: process.pid,
        uptime: uptime(),
        work_factor: workFactor,
        requests: { ...requests.json(), failed_injected: faults.failedInjected() },
        process: cpu.json(),
        stress: stress.status(),
        sink: options.sink === undefined ? null : { received_bytes: options.sink.received() },
        faults: faults.json(),
        load_reports: loadReports.json(),
      }),
  }

  const server = createServer((req, res) => {
    const url = parseTarget(req.url)
    const route = url === undefined ? undefined : routes[url.pathname]
    requests.started(route === undefined ? "other" : url!.pathname)
    if (route !== undefined && reportsLoad(url!.pathname)) reporting.add(res)
    res.setHeader("x-served-by", options.name)
    res.once("close", () => requests.finished())
    // Bodies are never read: drained so a keep-alive connection can carry the next request.
    req.resume()
    if (url === undefined) {
      sendJson(res, 400, { error: "malformed request target" })
      return
    }
    if (route === undefined) {
      sendJson(res, 404, { error: `no such endpoint: ${url.pathname}`, endpoints: Object.keys(routes) })
      return
    }
    if (req.method !== "GET" && req.method !== "HEAD" && req.method !== "POST") {
      sendJson(res, 405, { error: `method ${req.method} not allowed` }, { allow: "GET, HEAD, POST" })
      return
    }
    if (url.pathname.startsWith("/compute/") && faults.failsNow()) {
      sendJson(res, 500, {
        error: "injected fault: this replica fails a share of /compute/*",
        hostname: host,
      })
      return
    }
    try {
      route({ req, res, query: url.searchParams })
    } catch (error) {
      if (error instanceof BadParam) sendJson(res, 400, { error: error.message, param: error.param })
      else if (!res.headersSent)
        sendJson(res, 500, { error: error instanceof Error ? error.message : String(error) })
      else res.destroy()
    }
  })
  server.on("close", () => {
    cpu.stop()
    loadReports.stop()
  })
  return server
}
