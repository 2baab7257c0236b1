/**
 * Open-loop load: requests leave at a fixed arrival rate whatever the answers do, and each latency is
 * counted from the moment its request was due, not from when it was sent. A slow replica therefore
 * cannot hide by slowing the client down (coordinated omission), which a closed loop of N connections
 * would let it do.
 */
import { Pool } from "undici"

export interface OpenLoopOptions {
  /**
   * Base URLs of the balancer under test, e.g. http://127.0.0.1:8081; with more than one (two
   * processes of the same balancer), the requests go to each in turn.
   */
  readonly origins: ReadonlyArray<string>
  /** The path of request `index` (warm-up requests first), so a run may mix request costs. */
  readonly pathOf: (index: number) => string
  readonly rateRps: number
  readonly durationS: number
  /** Sent first at the same rate and not counted: lets the balancer adapt to a new scenario. */
  readonly warmupS: number
  /** Called when the counted part starts, and when its last request has been sent. */
  readonly onPhase?: (phase: "measuring" | "sent") => void
  /** A request still unanswered this long after it was due is abandoned and counted as an error. */
  readonly timeoutMs: number
}

export interface OpenLoopResult {
  readonly requests: number
  readonly errors: number
  /** Replica (`X-Served-By`) → answers it gave. */
  readonly servedBy: Record<string, number>
  /** Per one-second window of due times: replica → answers. */
  readonly perSecond: ReadonlyArray<Record<string, number>>
  /**
   * Per one-second window: the latencies (ms) of the answered requests, and of those abandoned at the
   * timeout (they took at least that long: leaving them out would flatter the tail).
   */
  readonly latenciesPerSecond: ReadonlyArray<ReadonlyArray<number>>
}

/** Sending is paced by this timer; requests due between two ticks leave together at the next. */
const TICK_MS = 5
/** Concurrency is not the limit under test: enough connections that no request waits for one. */
const MAX_CONNECTIONS = 512

export const runOpenLoop = async (options: OpenLoopOptions): Promise<OpenLoopResult> => {
  const pools = options.origins.map(
    (origin) => new Pool(origin, { connections: MAX_CONNECTIONS, headersTimeout: 0, bodyTimeout: 0 }),
  )
  const warmup = Math.round(options.rateRps * options.warmupS)
  const total = warmup + Math.round(options.rateRps * options.durationS)
  const seconds = Math.ceil(options.durationS)
  const perSecond = Array.from({ length: seconds }, () => ({}) as Record<string, number>)
  const latenciesPerSecond = Array.from({ length: seconds }, () => [] as Array<number>)
  const servedBy: Record<string, number> = {}
  let errors = 0

  const send = async (index: number, dueAt: number) => {
    const counted = index >= warmup
    const second = Math.min(seconds - 1, Math.floor((index - warmup) / options.rateRps))
    const abort = AbortSignal.timeout(Math.max(1, Math.round(dueAt + options.timeoutMs - performance.now())))
    try {
      const pool = pools[index % pools.length]!
      const response = await pool.request({ path: options.pathOf(index), method: "GET", signal: abort })
      await response.body.dump({ limit: Number.POSITIVE_INFINITY })
      const latencyMs = performance.now() - dueAt
      if (!counted) return
      if (response.statusCode < 200 || response.statusCode >= 300) {
        errors++
        return
      }
      const replica = String(response.headers["x-served-by"] ?? "unknown")
      servedBy[replica] = (servedBy[replica] ?? 0) + 1
      perSecond[second]![replica] = (perSecond[second]![replica] ?? 0) + 1
      latenciesPerSecond[second]!.push(latencyMs)
    } catch {
      if (!counted) return
      errors++
      if (abort.aborted) latenciesPerSecond[second]!.push(options.timeoutMs)
    }
  }

  const started = performance.now()
  const inFlight: Array<Promise<void>> = []
  await new Promise<void>((resolve) => {
    let sent = 0
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * options.rateRps))
      for (; sent < due; sent++) {
        if (sent === warmup) options.onPhase?.("measuring")
        inFlight.push(send(sent, started + (sent * 1000) / options.rateRps))
      }
      if (sent >= total) {
        options.onPhase?.("sent")
        clearInterval(timer)
        resolve()
      }
    }, TICK_MS)
  })
  await Promise.all(inFlight)
  await Promise.all(pools.map((pool) => pool.destroy()))

  return { requests: total - warmup, errors, servedBy, perSecond, latenciesPerSecond }
}
