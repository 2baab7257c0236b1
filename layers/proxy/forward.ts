/**
 * One proxied request: route it, stream the request to the chosen endpoint and its response back, and
 * tell the attempt how the exchange ended. Written against undici's dispatch handler so bodies flow
 * chunk by chunk with backpressure both ways and nothing is buffered.
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import type { Http2ServerRequest } from "node:http2"
import type { Readable } from "node:stream"
import type { Dispatcher, Pool } from "undici"
import type { AffinityShape } from "../../src/Affinity.ts"
import { type Attempt, FIRST_FINAL, FIRST_RETRYABLE, type Refusal } from "../../src/Attempt.ts"
import type { Endpoint } from "../../src/Endpoint.ts"
import type { RateDecision } from "../../src/limits/rate-limiter.ts"
import { Ticket } from "../../src/limits/request-queue.ts"
import { isAttempt } from "../../src/Router.ts"
import type { Cluster, RouteTableShape } from "../../src/RouteTable.ts"
import { sendJson } from "../../src/send-json.ts"
import { BodyTooLarge, limitBody } from "./body-limit.ts"
import { clientAddressOf, forwardRequestHeaders, forwardResponseHeaders } from "./headers.ts"
import { noRoute } from "./no-route.ts"
import { UNSENDABLE, upstreamFailureOf } from "./upstream-errors.ts"

export interface ForwardContext {
  readonly routes: RouteTableShape
  /** What the client spoke to the balancer, for `X-Forwarded-Proto`. */
  readonly scheme: "http" | "https"
  readonly upstreamOf: (endpoint: Endpoint) => Pool
  /** 0: any size. */
  readonly maxRequestBodyBytes: number
  readonly forwardLoadReports: boolean
}

const endedWithHeaders = (req: IncomingMessage) =>
  (req as unknown as Http2ServerRequest).stream.endAfterHeaders

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"])

export const forward = (context: ForwardContext, req: IncomingMessage, res: ServerResponse): void => {
  const forwarded = forwardRequestHeaders(
    req.rawHeaders,
    clientAddressOf(req.socket.remoteAddress),
    context.scheme,
  )
  const { headers } = forwarded
  // HTTP/2 has no Transfer-Encoding: a body of unknown length is there unless the stream ended
  // with its headers.
  const hasBody = forwarded.hasBody || (req.httpVersionMajor === 2 && !endedWithHeaders(req))
  const cluster = context.routes.match(req)
  if (cluster === undefined) {
    context.routes.recordNoRoute()
    refuseUnread(res, hasBody, noRoute(req))
    return
  }
  const { router, rateLimiter } = cluster
  router.arrived("request")
  const limit = context.maxRequestBodyBytes
  if (hasBody && limit > 0 && Number(req.headers["content-length"] ?? 0) > limit) {
    router.refused("request_too_large")
    refuseTooLarge(res, limit)
    return
  }
  if (rateLimiter === undefined) {
    send(context, cluster, req, res, headers, hasBody, undefined)
    return
  }
  const admit = (decision: RateDecision) => {
    if (decision.admitted) send(context, cluster, req, res, headers, hasBody, decision.headers)
    else if (!res.destroyed) refuseUnread(res, hasBody, decision.refusal)
  }
  const decision = rateLimiter.check(req)
  if (decision instanceof Promise) void decision.then(admit)
  else admit(decision)
}

/** Sends an admitted request to a replica, at once or after waiting in the route's queue. */
const send = (
  context: ForwardContext,
  cluster: Cluster,
  req: IncomingMessage,
  res: ServerResponse,
  headers: Array<string>,
  hasBody: boolean,
  rateLimitHeaders: ReadonlyArray<string> | undefined,
): void => {
  const { router, route } = cluster
  // A client that left while Redis decided is not sent on.
  if (res.destroyed) return
  const limit = context.maxRequestBodyBytes
  const url = req.url ?? "/"
  const path = cluster.upstreamPath(url)
  if (path !== url) headers.push("x-forwarded-prefix", route.stripPrefix!)
  const retryable = !hasBody && IDEMPOTENT.has(req.method ?? "GET")
  // A body of unknown length is counted as it streams; Node's parser already holds one with a
  // Content-Length to exactly that length.
  const body = !hasBody
    ? null
    : limit > 0 && req.headers["content-length"] === undefined
      ? limitBody(req, limit)
      : req
  const { affinity } = cluster
  const key = affinity.keyOf(req)
  const request = { req, res, path, headers, body, affinity, key, rateLimitHeaders }
  const routed = router.routeOrQueue(retryable ? FIRST_RETRYABLE : FIRST_FINAL, key)
  if (!(routed instanceof Ticket)) {
    dispatch(context, request, routed)
    return
  }
  routed.deliver = (next) => dispatch(context, request, next)
  res.once("close", () => routed.cancel())
}

/** What every try of one request sends. */
interface Request {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  /** The path sent to the replica (the route may strip a prefix). */
  readonly path: string
  readonly affinity: AffinityShape
  /** What binds the request to a replica (a cookie's value, a hashed key), if anything does. */
  readonly key: string | undefined
  readonly headers: Array<string>
  readonly body: Readable | null
  /** The route's rate-limit state, for the response (`RateLimit-Policy`, `RateLimit`). */
  readonly rateLimitHeaders: ReadonlyArray<string> | undefined
}

const refuseTooLarge = (res: ServerResponse, limit: number) => {
  // The unread rest of the body would be taken for the next request: the connection ends here.
  res.shouldKeepAlive = false
  refuse(res, {
    status: 413,
    body: {
      error: "request_too_large",
      message: `the request body is larger than MAX_REQUEST_BODY (${limit} bytes)`,
    },
  })
}

const refuse = (res: ServerResponse, { status, body, retryAfterSeconds, headers = [] }: Refusal) => {
  if (res.headersSent) res.destroy()
  else if (retryAfterSeconds === undefined) sendJson(res, status, body, headers)
  else sendJson(res, status, body, [...headers, "retry-after", String(retryAfterSeconds)])
}

const refuseUnread = (res: ServerResponse, hasBody: boolean, refusal: Refusal) => {
  // An unread body would be taken for the next request on this connection: it ends here.
  if (hasBody) res.shouldKeepAlive = false
  refuse(res, refusal)
}

/** Sends the request on its attempt, or answers the refusal. */
const dispatch = (context: ForwardContext, request: Request, routed: Attempt | Refusal): void => {
  if (!isAttempt(routed)) {
    refuseUnread(request.res, request.body !== null, routed)
    return
  }
  const { req, path, headers, body } = request
  const { endpoint } = routed
  context.upstreamOf(endpoint).dispatch(
    {
      origin: endpoint.replica.origin,
      path,
      method: req.method as Dispatcher.HttpMethod,
      headers,
      body,
    },
    new Exchange(context, request, routed),
  )
}

const flushHeadersIfIdle = (exchange: Exchange) => exchange.flushHeadersIfIdle()

/** undici's dispatch handler for one attempt. */
class Exchange implements Dispatcher.DispatchHandler {
  private abort: ((reason?: Error) => void) | undefined
  private resume: (() => void) | undefined
  private bodyStarted = false

  constructor(
    private readonly context: ForwardContext,
    private readonly request: Request,
    private readonly attempt: Attempt,
  ) {
    request.res.once("close", () => this.onClientClose())
  }

  /** The client went away before the exchange ended: stop the upstream request too. */
  private onClientClose(): void {
    if (this.attempt.over) return
    this.attempt.abandon()
    this.abort?.(new Error("client closed the connection"))
  }

  onConnect(abort: (reason?: Error) => void): void {
    if (this.attempt.over) abort(new Error("client closed the connection"))
    else this.abort = abort
  }

  onHeaders(
    statusCode: number,
    rawHeaders: Array<Buffer>,
    resume: () => void,
    statusMessage?: string,
  ): boolean {
    // 1xx interim responses (100 Continue) are answered by Node's server itself.
    if (statusCode < 200 || this.attempt.over) return true
    this.resume = resume
    this.attempt.respond(statusCode)
    const headers = forwardResponseHeaders(rawHeaders, this.attempt, this.context.forwardLoadReports)
    const { affinity, key, rateLimitHeaders } = this.request
    const cookie = affinity.setCookie(key, this.attempt.endpoint)
    if (cookie !== undefined) headers.push("set-cookie", cookie)
    if (rateLimitHeaders !== undefined) headers.push(...rateLimitHeaders)
    const { req, res } = this.request
    // HTTP/2 has no reason phrase (Node warns when given one).
    if (req.httpVersionMajor === 2) res.writeHead(statusCode, headers)
    else res.writeHead(statusCode, statusMessage ?? "", headers)
    // Node sends stored headers with the first body write. Usually that chunk arrives in the same
    // tick; a replica that answers headers first and body later (long poll, event stream) must not
    // leave the client without a status meanwhile.
    process.nextTick(flushHeadersIfIdle, this)
    return true
  }

  /** Sends the headers now unless the body (and so the headers) is already on its way. */
  flushHeadersIfIdle(): void {
    if (!this.attempt.over && !this.bodyStarted) this.request.res.flushHeaders()
  }

  onData(chunk: Buffer): boolean {
    this.bodyStarted = true
    if (this.attempt.over) return true
    const { res } = this.request
    if (res.write(chunk)) return true
    // Backpressure: undici pauses the upstream socket until the client drains.
    res.once("drain", this.resume!)
    return false
  }

  onComplete(): void {
    if (this.attempt.over) return
    this.attempt.finish()
    this.request.res.end()
  }

  onError(error: Error & { code?: string }): void {
    const { attempt, request } = this
    if (attempt.over) return
    const { res } = request
    if (error instanceof BodyTooLarge) {
      // The client's fault, not the replica's: nothing is reported against it.
      const answered = attempt.responded
      attempt.refuseForClient("request_too_large")
      if (answered) res.destroy()
      else refuseTooLarge(res, error.limit)
      return
    }
    if (UNSENDABLE.has(error.code ?? "")) {
      // Nothing reached the replica: the request itself cannot be sent, and no replica is to blame.
      attempt.refuseForClient("bad_request")
      refuse(res, {
        status: 400,
        body: { error: "bad_request", message: `the request cannot be forwarded: ${error.message}` },
      })
      return
    }
    const next = attempt.fail(upstreamFailureOf(error))
    // Too late for a status: cut the response so the client sees it incomplete, not truncated-as-whole.
    if (attempt.responded) res.destroy(error)
    else if (next !== undefined) dispatch(this.context, request, next)
  }
}
