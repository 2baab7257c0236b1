/**
 * One proxied request: pick a replica, take a lease, stream the request to it and its response back,
 * release the lease however the exchange ends. Written against undici's dispatch handler so bodies
 * flow chunk by chunk with backpressure both ways and nothing is buffered.
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import { performance } from "node:perf_hooks"
import type { Readable } from "node:stream"
import type { Dispatcher, Pool } from "undici"
import type { Replica } from "../../src/domain/Replica.ts"
import type { HealthProbeShape } from "../../src/HealthProbe.ts"
import type { Lease } from "../../src/LeaseStore.ts"
import type { OutlierDetectorShape } from "../../src/OutlierDetector.ts"
import type { SelectorShape } from "../../src/Selector.ts"
import { sendJson } from "./admin.ts"
import { BodyTooLarge, limitBody } from "./body-limit.ts"
import { choose, isRefusal, type RoutingContext } from "./choose.ts"
import { clientAddressOf, forwardRequestHeaders, forwardResponseHeaders } from "./headers.ts"
import type { RetryBudget } from "./retry-budget.ts"
import {
  CONNECT_FAILURES,
  HEADERS_TIMEOUT,
  RESET_BEFORE_RESPONSE,
  TIMEOUTS,
  UNSENDABLE,
} from "./upstream-errors.ts"

export interface ForwardContext extends RoutingContext {
  readonly observe: SelectorShape["observe"]
  readonly upstreamOf: (replica: Replica) => Pool
  readonly health: HealthProbeShape
  readonly outliers: OutlierDetectorShape
  readonly retryBudget: RetryBudget
  /** 0: any size. */
  readonly maxRequestBodyBytes: number
  /** Called with each request's number; logs the LOG_EVERY_N_REQUESTS summary when it is due. */
  readonly summarize: (requestNumber: number) => void
}

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"])

export const forward = (context: ForwardContext, req: IncomingMessage, res: ServerResponse): void => {
  context.summarize(context.stats.recordRequest())
  context.retryBudget.deposit()
  const { headers, hasBody } = forwardRequestHeaders(
    req.rawHeaders,
    clientAddressOf(req.socket.remoteAddress),
  )
  const limit = context.maxRequestBodyBytes
  if (hasBody && limit > 0 && Number(req.headers["content-length"] ?? 0) > limit) {
    refuseTooLarge(context, res, limit)
    return
  }
  const retryable = !hasBody && IDEMPOTENT.has(req.method ?? "GET")
  // A body of unknown length is counted as it streams; Node's parser already holds one with a
  // Content-Length to exactly that length.
  const body = !hasBody
    ? null
    : limit > 0 && req.headers["content-length"] === undefined
      ? limitBody(req, limit)
      : req
  route(context, req, res, headers, body, retryable ? undefined : null)
}

const refuseTooLarge = (context: ForwardContext, res: ServerResponse, limit: number) => {
  context.stats.recordFailure("request_too_large")
  // The unread rest of the body would be taken for the next request: the connection ends here.
  res.shouldKeepAlive = false
  refuse(res, 413, {
    error: "request_too_large",
    message: `the request body is larger than MAX_REQUEST_BODY (${limit} bytes)`,
  })
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
  body: Readable | null,
  excluded: Replica | null | undefined,
): void => {
  const choice = choose(context, excluded ?? undefined)
  if (isRefusal(choice)) {
    // An unread body would be taken for the next request on this connection: it ends here.
    if (body !== null) res.shouldKeepAlive = false
    refuse(res, choice.status, choice.body)
    return
  }
  const { decision, lease, panic } = choice
  const exchange = new Exchange(context, req, res, headers, body, decision.replica, lease, excluded, panic)
  context.upstreamOf(decision.replica).dispatch(
    {
      origin: decision.replica.origin,
      path: req.url ?? "/",
      method: req.method as Dispatcher.HttpMethod,
      headers,
      body,
    },
    exchange,
  )
}

const refuse = (res: ServerResponse, status: number, body: unknown) => {
  if (!res.headersSent) sendJson(res, status, body)
  else res.destroy()
}

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
    private readonly body: Readable | null,
    private readonly replica: Replica,
    private readonly lease: Lease,
    private readonly excluded: Replica | null | undefined,
    private readonly panic: boolean,
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

  /** Whether a retry would have somewhere else to go: otherwise it spends no budget. */
  private anotherReplica(): boolean {
    return this.context.candidates().replicas.some((candidate) => candidate.id !== this.replica.id)
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
    if (statusCode >= 500) this.context.outliers.reportFailure(this.replica.id, "5xx")
    else this.context.outliers.reportSuccess(this.replica.id)
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
    const { context, replica } = this
    if (error instanceof BodyTooLarge) {
      // The client's fault, not the replica's: nothing is reported against it.
      if (this.responseStarted) this.res.destroy()
      else {
        context.stats.recordNoResponse(replica.id, "aborted")
        refuseTooLarge(context, this.res, error.limit)
      }
      return
    }
    const code = error.code ?? ""
    if (UNSENDABLE.has(code)) {
      // Nothing reached the replica: the request itself cannot be sent, and no replica is to blame.
      context.stats.recordNoResponse(replica.id, "aborted")
      context.stats.recordFailure("bad_request")
      refuse(this.res, 400, {
        error: "bad_request",
        message: `the request cannot be forwarded: ${error.message}`,
      })
      return
    }
    this.report(false)
    if (!this.responseStarted) context.stats.recordNoResponse(replica.id, "error")
    const connectFailed = CONNECT_FAILURES.has(code)
    const timedOut = TIMEOUTS.has(code)
    if (connectFailed) context.health.reportFailure(replica.id, `${code}: ${error.message}`)
    context.outliers.reportFailure(replica.id, connectFailed ? "connect" : timedOut ? "timeout" : "reset")
    const retryable = connectFailed || RESET_BEFORE_RESPONSE.has(code) || code === HEADERS_TIMEOUT
    if (retryable && this.excluded === undefined && !this.responseStarted && this.anotherReplica()) {
      if (context.retryBudget.withdraw()) {
        context.stats.recordRetry()
        route(context, this.req, this.res, this.headers, this.body, replica)
        return
      }
      context.stats.recordRetryDenied()
    }
    context.stats.recordFailure(timedOut ? "upstream_timeout" : "upstream_error")
    if (this.responseStarted) {
      // Too late for a status: cut the response so the client sees it incomplete, not truncated-as-whole.
      this.res.destroy(error)
      return
    }
    if (connectFailed && this.panic) {
      // Every replica is unhealthy and this one could not be reached either (RFC 9110 §15.6.4).
      refuse(this.res, 503, {
        error: "no_healthy_replica",
        message: `every replica of ${context.targetService} is down`,
      })
      return
    }
    refuse(this.res, timedOut ? 504 : 502, {
      error: timedOut ? "upstream_timeout" : "upstream_error",
      message: `replica ${replica.name} failed: ${error.code ?? error.name}: ${error.message}`,
    })
  }
}
