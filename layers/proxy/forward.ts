/**
 * One proxied request: pick a replica, take a lease, stream the request to it and its response back,
 * release the lease however the exchange ends. Written against undici's dispatch handler so bodies
 * flow chunk by chunk with backpressure both ways and nothing is buffered.
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import { performance } from "node:perf_hooks"
import type { Dispatcher, Pool } from "undici"
import type { Algorithm } from "../../src/domain/Algorithm.ts"
import type { Replica } from "../../src/domain/Replica.ts"
import type { HealthProbeShape } from "../../src/HealthProbe.ts"
import type { Lease, LeaseStoreShape } from "../../src/LeaseStore.ts"
import type { Candidates } from "../../src/ReplicaPool.ts"
import type { RoutingStatsShape } from "../../src/RoutingStats.ts"
import type { Decision, SelectorShape } from "../../src/Selector.ts"
import { sendJson } from "./admin.ts"
import { clientAddressOf, forwardRequestHeaders, forwardResponseHeaders } from "./headers.ts"

export interface ForwardContext {
  readonly candidates: () => Candidates
  readonly pick: (candidates: ReadonlyArray<Replica>) => Decision | undefined
  readonly observe: SelectorShape["observe"]
  readonly algorithm: Algorithm
  readonly upstreamOf: (replica: Replica) => Pool
  readonly leases: LeaseStoreShape
  readonly health: HealthProbeShape
  readonly stats: RoutingStatsShape
  readonly targetService: string
  readonly debugRouting: boolean
  /** Called with each request's number; logs the LOG_EVERY_N_REQUESTS summary when it is due. */
  readonly summarize: (requestNumber: number) => void
  readonly log: (message: string, annotations: Record<string, unknown>) => void
}

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"])

/** Errors raised before the connection carried a byte of the request: safe to try another replica. */
const CONNECT_FAILURES = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "ENOTFOUND",
  "EAI_AGAIN",
  "UND_ERR_CONNECT_TIMEOUT",
])

/**
 * The connection broke before any response byte arrived (a replica killed mid-request, a keep-alive
 * connection the replica closed as we reused it). RFC 9110 §9.2.2 lets an idempotent request be
 * sent again; the replica is not marked down for it, a closing connection is not a dead replica.
 */
const RESET_BEFORE_RESPONSE = new Set(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET"])

const TIMEOUTS = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "UND_ERR_CONNECT_TIMEOUT"])

export const forward = (context: ForwardContext, req: IncomingMessage, res: ServerResponse): void => {
  context.summarize(context.stats.recordRequest())
  const { headers, hasBody } = forwardRequestHeaders(
    req.rawHeaders,
    clientAddressOf(req.socket.remoteAddress),
  )
  const retryable = !hasBody && IDEMPOTENT.has(req.method ?? "GET")
  route(context, req, res, headers, hasBody, retryable ? undefined : null)
}

/**
 * `excluded`: undefined on a first attempt that may be retried, a replica on the retry (which must
 * avoid it), null when the request may not be retried.
 */
const route = (
  context: ForwardContext,
  req: IncomingMessage,
  res: ServerResponse,
  headers: Array<string>,
  hasBody: boolean,
  excluded: Replica | null | undefined,
): void => {
  const { replicas, panic } = context.candidates()
  const candidates = excluded ? replicas.filter((replica) => replica.id !== excluded.id) : replicas
  if (candidates.length === 0 && excluded) {
    // A retry with nowhere else to go: the one replica's failure is the answer.
    context.stats.recordFailure("upstream_error")
    refuse(res, 502, {
      error: "upstream_error",
      message: `the only replica of ${context.targetService} failed: ${excluded.name}`,
    })
    return
  }
  if (candidates.length === 0) {
    context.stats.recordFailure("no_replica")
    refuse(res, 503, { error: "no_replica", message: `no replica of ${context.targetService} is known yet` })
    return
  }
  const started = performance.now()
  const decision = context.pick(candidates)
  const routingTimeMs = performance.now() - started
  if (decision === undefined) {
    context.stats.recordFailure("no_replica")
    refuse(res, 503, {
      error: "no_fresh_metrics",
      message: `no replica of ${context.targetService} has fresh metrics and FALLBACK_ENABLED is false`,
    })
    return
  }
  context.stats.recordDecision(decision, routingTimeMs, panic)
  const lease = context.leases.acquire(decision.replica.id)
  if (context.debugRouting) logDecision(context, decision, lease, routingTimeMs, panic)

  const exchange = new Exchange(context, req, res, headers, hasBody, decision.replica, lease, excluded)
  context.upstreamOf(decision.replica).dispatch(
    {
      origin: decision.replica.origin,
      path: req.url ?? "/",
      method: req.method as Dispatcher.HttpMethod,
      headers,
      body: hasBody ? req : null,
    },
    exchange,
  )
}

const refuse = (res: ServerResponse, status: number, body: unknown) => {
  if (!res.headersSent) sendJson(res, status, body)
  else res.destroy()
}

const logDecision = (
  context: ForwardContext,
  decision: Decision,
  lease: Lease,
  routingTimeMs: number,
  panic: boolean,
) =>
  context.log("routed", {
    replica: decision.replica.name,
    replica_id: decision.replica.id,
    algorithm: context.algorithm,
    score: decision.score ?? null,
    leases: context.leases.active(lease.replicaId),
    fallback: decision.fallback,
    panic,
    routing_time_ms: routingTimeMs,
  })

const flushHeadersIfIdle = (exchange: Exchange) => exchange.flushHeadersIfIdle()

/** undici's dispatch handler for one attempt; it owns the attempt's lease. */
class Exchange implements Dispatcher.DispatchHandler {
  private abort: ((reason?: Error) => void) | undefined
  private resume: (() => void) | undefined
  private responseStarted = false
  private bodyStarted = false
  private finished = false
  private status = 0
  // The data plane reads the monotonic clock directly: a fiber per exchange would cost more than it.
  private readonly dispatchedAt = performance.now()

  constructor(
    private readonly context: ForwardContext,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly headers: Array<string>,
    private readonly hasBody: boolean,
    private readonly replica: Replica,
    private readonly lease: Lease,
    private readonly excluded: Replica | null | undefined,
  ) {
    res.once("close", () => this.onClientClose())
  }

  /** The client went away before the exchange ended: stop the upstream request too. */
  private onClientClose(): void {
    if (this.finished) return
    this.context.stats.recordFailure("client_abort")
    if (!this.responseStarted) this.context.stats.recordNoResponse(this.replica.id, "aborted")
    this.finish()
    this.abort?.(new Error("client closed the connection"))
  }

  private finish() {
    this.finished = true
    this.context.leases.release(this.lease)
  }

  /** Tells the selector how the replica did; not called when the client gave up first. */
  private report(ok: boolean) {
    this.context.observe(this.replica.id, performance.now() - this.dispatchedAt, ok)
  }

  onConnect(abort: (reason?: Error) => void): void {
    if (this.finished) abort(new Error("client closed the connection"))
    else this.abort = abort
  }

  onHeaders(
    statusCode: number,
    rawHeaders: Array<Buffer>,
    resume: () => void,
    statusMessage?: string,
  ): boolean {
    // 1xx interim responses (100 Continue) are answered by Node's server itself.
    if (statusCode < 200 || this.finished) return true
    this.responseStarted = true
    this.status = statusCode
    this.resume = resume
    this.context.stats.recordResponse(this.replica.id, statusCode)
    this.res.writeHead(statusCode, statusMessage ?? "", forwardResponseHeaders(rawHeaders))
    // Node sends stored headers with the first body write. Usually that chunk arrives in the same
    // tick; a replica that answers headers first and body later (long poll, event stream) must not
    // leave the client without a status meanwhile.
    process.nextTick(flushHeadersIfIdle, this)
    return true
  }

  /** Sends the headers now unless the body (and so the headers) is already on its way. */
  flushHeadersIfIdle(): void {
    if (!this.finished && !this.bodyStarted) this.res.flushHeaders()
  }

  onData(chunk: Buffer): boolean {
    this.bodyStarted = true
    if (this.finished) return true
    if (this.res.write(chunk)) return true
    // Backpressure: undici pauses the upstream socket until the client drains.
    this.res.once("drain", this.resume!)
    return false
  }

  onComplete(): void {
    if (this.finished) return
    this.finish()
    this.report(this.status < 500)
    this.res.end()
  }

  onError(error: Error & { code?: string }): void {
    if (this.finished) return
    this.finish()
    this.report(false)
    if (!this.responseStarted) this.context.stats.recordNoResponse(this.replica.id, "error")
    const code = error.code ?? ""
    const connectFailed = CONNECT_FAILURES.has(code)
    if (connectFailed) this.context.health.reportFailure(this.replica.id, `${code}: ${error.message}`)
    const retryable = connectFailed || RESET_BEFORE_RESPONSE.has(code)
    if (retryable && this.excluded === undefined && !this.responseStarted) {
      this.context.stats.recordRetry()
      route(this.context, this.req, this.res, this.headers, this.hasBody, this.replica)
      return
    }
    const timedOut = TIMEOUTS.has(code)
    this.context.stats.recordFailure(timedOut ? "upstream_timeout" : "upstream_error")
    if (this.responseStarted) {
      // Too late for a status: cut the response so the client sees it incomplete, not truncated-as-whole.
      this.res.destroy(error)
      return
    }
    refuse(this.res, timedOut ? 504 : 502, {
      error: timedOut ? "upstream_timeout" : "upstream_error",
      message: `replica ${this.replica.name} failed: ${error.code ?? error.name}: ${error.message}`,
    })
  }
}
