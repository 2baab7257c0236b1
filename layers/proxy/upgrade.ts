/**
 * Upgraded connections (WebSocket, or any protocol a request asks for with `Upgrade:`): the handshake
 * goes to a replica picked like any request, then the two sockets are spliced for the connection's
 * life, and the lease with them. Node's server hands these over as raw sockets, so answers are raw too.
 */
import { type ClientRequest, request as httpRequest, type IncomingMessage, STATUS_CODES } from "node:http"
import { Socket } from "node:net"
import type { Duplex } from "node:stream"
import { type Attempt, FIRST_FINAL, type Refusal, type UpstreamFailure } from "../../src/Attempt.ts"
import type { RateDecision } from "../../src/limits/rate-limiter.ts"
import { isAttempt } from "../../src/Router.ts"
import type { Cluster, RouteTableShape } from "../../src/RouteTable.ts"
import { clientAddressOf, forwardRequestHeaders, forwardResponseHeaders } from "./headers.ts"
import { noRoute } from "./no-route.ts"
import { upstreamFailureOf } from "./upstream-errors.ts"

export interface UpgradeContext {
  readonly routes: RouteTableShape
  /** What the client spoke to the balancer, for `X-Forwarded-Proto`. */
  readonly scheme: "http" | "https"
  readonly connectTimeoutMs: number
  /** How long the replica may take to answer the handshake once connected. */
  readonly responseTimeoutMs: number
  readonly leaseDurationMs: number
  readonly forwardLoadReports: boolean
  /**
   * Clients' sockets of upgrade requests, until they close: Node's server no longer tracks them, and a
   * drain must cut them at its deadline.
   */
  readonly open: Set<Duplex>
  readonly draining: () => boolean
}

const ignore = () => {}

/** A status line and header block; values come from Node's parsers, which refuse CR and LF in them. */
const responseHead = (status: number, message: string, headers: ReadonlyArray<string>): string => {
  let head = `HTTP/1.1 ${status} ${message}\r\n`
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`
  return `${head}\r\n`
}

/** A JSON answer written straight onto the client's socket, which then closes. */
const answer = (socket: Duplex, status: number, body: unknown, headers: ReadonlyArray<string> = []): void => {
  if (!socket.writable) {
    socket.destroy()
    return
  }
  const payload = JSON.stringify(body)
  const head = responseHead(status, STATUS_CODES[status] ?? "", [
    "content-type",
    "application/json",
    "content-length",
    String(Buffer.byteLength(payload)),
    "cache-control",
    "no-store",
    "connection",
    "close",
    ...headers,
  ])
  socket.end(head + payload, () => socket.destroy())
}

/** When one side of a tunnel is gone, the other may still hold bytes for its peer: let them out first. */
const closeAfterFlush = (socket: Duplex) => {
  if (socket.destroyed) return
  if (socket.writableLength === 0) socket.destroy()
  else socket.end(() => socket.destroy())
}

const keepOpen = (socket: Duplex) => {
  if (!(socket instanceof Socket)) return
  // An upgraded connection may rightly stay silent for minutes; TCP keep-alive finds dead peers.
  socket.setTimeout(0)
  socket.setNoDelay(true)
  socket.setKeepAlive(true, 30_000)
}

/** Node's server emits `upgrade` (not `request`) for these: route it, or answer it here. */
export const upgrade = (
  context: UpgradeContext,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): void => {
  // Errors end in `close`, which is where the tunnel cleans up.
  socket.on("error", ignore)
  context.open.add(socket)
  socket.once("close", () => context.open.delete(socket))
  const cluster = context.routes.match(req)
  if (cluster === undefined) {
    context.routes.recordNoRoute()
    const { status, body } = noRoute(req)
    answer(socket, status, body)
    return
  }
  const { router } = cluster
  router.arrived("upgrade")
  if (context.draining()) {
    answer(socket, 503, { error: "shutting_down", message: "the balancer is shutting down" })
    return
  }
  const { rateLimiter } = cluster
  if (rateLimiter === undefined) {
    open(context, cluster, req, socket, head)
    return
  }
  const admit = (decision: RateDecision) => {
    if (decision.admitted) open(context, cluster, req, socket, head)
    else refuse(socket, decision.refusal)
  }
  const decision = rateLimiter.check(req)
  if (decision instanceof Promise) void decision.then(admit)
  else admit(decision)
}

const refuse = (socket: Duplex, { status, body, retryAfterSeconds, headers = [] }: Refusal) =>
  answer(
    socket,
    status,
    body,
    retryAfterSeconds === undefined ? headers : [...headers, "retry-after", String(retryAfterSeconds)],
  )

/** Routes an admitted upgrade and opens its tunnel. Upgrades never wait in the queue. */
const open = (
  context: UpgradeContext,
  cluster: Cluster,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
) => {
  // A client that left while Redis decided is not sent on.
  if (socket.destroyed) return
  // An upgrade is never retried: the handshake may have started something on the replica.
  const routed = cluster.router.route(FIRST_FINAL, cluster.affinity.keyOf(req))
  if (!isAttempt(routed)) {
    refuse(socket, routed)
    return
  }
  try {
    new Tunnel(context, req, cluster.upstreamPath(req.url ?? "/"), socket, head, routed)
  } catch (error) {
    // node:http refuses to write some requests Node's parser let through (e.g. odd bytes in the path).
    routed.refuseForClient("bad_request")
    answer(socket, 400, {
      error: "bad_request",
      message: `the upgrade cannot be forwarded: ${String(error)}`,
    })
  }
}

/** One upgrade, from the handshake to the last byte; it owns both sockets, its attempt the lease. */
class Tunnel {
  private readonly upstream: ClientRequest
  private upstreamSocket: Duplex | undefined
  private timer: NodeJS.Timeout | undefined
  private renewal: NodeJS.Timeout | undefined
  /** The handshake got its answer (101 or another status). */
  private answered = false

  constructor(
    private readonly context: UpgradeContext,
    req: IncomingMessage,
    /** The path sent to the replica (the route may strip a prefix). */
    path: string,
    private readonly socket: Duplex,
    private readonly head: Buffer,
    private readonly attempt: Attempt,
  ) {
    const { headers } = forwardRequestHeaders(
      req.rawHeaders,
      clientAddressOf(req.socket.remoteAddress),
      context.scheme,
    )
    // Hop-by-hop as they are, these two are what the upgrade asks the replica for.
    headers.push("connection", "upgrade", "upgrade", req.headers.upgrade ?? "")
    const origin = new URL(attempt.endpoint.replica.origin)
    // Node adds no Host of its own to headers given as a list.
    if (req.headers.host === undefined) headers.push("host", origin.host)
    this.upstream = httpRequest(origin, { method: req.method, path, headers, agent: false })
    this.upstream.on("error", (error) => this.onUpstreamError(error))
    this.upstream.on("upgrade", (res, upstreamSocket, upstreamHead) =>
      this.onUpgraded(res, upstreamSocket, upstreamHead),
    )
    this.upstream.on("response", (res) => this.onRefused(res))
    this.upstream.on("socket", (upstreamSocket) => {
      upstreamSocket.once("connect", () => {
        clearTimeout(this.timer)
        this.timer = setTimeout(() => this.onTimeout("response"), context.responseTimeoutMs)
      })
    })
    this.timer = setTimeout(() => this.onTimeout("connect"), context.connectTimeoutMs)
    socket.once("close", () => this.onClientClose())
    // LEASE_DURATION guards against leaks, and a WebSocket (or a slow handshake) may rightly outlive
    // it: the lease is renewed while the connection lasts.
    this.renewal = setInterval(() => this.renew(), Math.max(100, context.leaseDurationMs / 2))
    this.renewal.unref()
    this.upstream.end()
  }

  private stopTimers(): void {
    clearTimeout(this.timer)
    clearInterval(this.renewal)
  }

  /** The replica's answer's headers for the client, its load report kept by the attempt. */
  private responseHeaders(res: IncomingMessage): Array<string> {
    const raw = res.rawHeaders.map((value) => Buffer.from(value, "latin1"))
    return forwardResponseHeaders(raw, this.attempt, this.context.forwardLoadReports)
  }

  /** The connection is over; the sockets are left to the caller. */
  private finish(): void {
    this.stopTimers()
    this.attempt.finish()
  }

  /** Cuts both sides at once. */
  private destroy(): void {
    this.finish()
    this.socket.destroy()
    this.upstream.destroy()
    this.upstreamSocket?.destroy()
  }

  private onClientClose(): void {
    this.stopTimers()
    // Before the answer the client gave up on the handshake; after it, closing is how tunnels end.
    if (this.answered) this.attempt.finish()
    else this.attempt.abandon()
    if (this.upstreamSocket === undefined) this.upstream.destroy()
    else closeAfterFlush(this.upstreamSocket)
  }

  private onUpstreamClose(): void {
    this.finish()
    closeAfterFlush(this.socket)
  }

  /** The handshake failed before any answer: the client gets the balancer's own. */
  private fail(failure: UpstreamFailure): void {
    this.stopTimers()
    const refusal = this.attempt.fail(failure)
    if (refusal === undefined || isAttempt(refusal)) return
    this.upstream.destroy()
    answer(this.socket, refusal.status, refusal.body)
  }

  private onUpstreamError(error: Error & { code?: string }): void {
    if (this.answered) this.destroy()
    else this.fail(upstreamFailureOf(error))
  }

  private onTimeout(phase: "connect" | "response"): void {
    if (this.answered) return
    const ms = phase === "connect" ? this.context.connectTimeoutMs : this.context.responseTimeoutMs
    const reason = `no ${phase === "connect" ? "connection" : "answer to the upgrade"} within ${ms} ms`
    this.fail({
      kind: phase === "connect" ? "connect_timeout" : "response_timeout",
      retryable: false,
      reason,
    })
  }

  private onUpgraded(res: IncomingMessage, upstreamSocket: Duplex, upstreamHead: Buffer): void {
    this.answered = true
    clearTimeout(this.timer)
    this.upstreamSocket = upstreamSocket
    upstreamSocket.on("error", ignore)
    upstreamSocket.once("close", () => this.onUpstreamClose())
    if (this.attempt.over) {
      upstreamSocket.destroy()
      return
    }
    this.attempt.respond(res.statusCode ?? 101)
    // The selector judges the handshake; the tunnel then lives on under the same lease.
    this.attempt.settle()
    keepOpen(this.socket)
    keepOpen(upstreamSocket)
    const headers = this.responseHeaders(res)
    headers.push("connection", "upgrade", "upgrade", res.headers.upgrade ?? "")
    this.socket.write(responseHead(res.statusCode ?? 101, res.statusMessage ?? "", headers))
    if (upstreamHead.length > 0) this.socket.write(upstreamHead)
    if (this.head.length > 0) upstreamSocket.write(this.head)
    upstreamSocket.pipe(this.socket)
    this.socket.pipe(upstreamSocket)
  }

  private renew(): void {
    // A drain ends the connection before long; renewing then would count as requests finished.
    if (!this.context.draining()) this.attempt.renew()
  }

  /** The replica answered the handshake without upgrading (400, 404, ...): relay that, then close. */
  private onRefused(res: IncomingMessage): void {
    this.answered = true
    clearTimeout(this.timer)
    if (this.attempt.over) {
      res.destroy()
      return
    }
    const status = res.statusCode ?? 502
    this.attempt.respond(status)
    this.attempt.settle()
    const headers = this.responseHeaders(res)
    // Node has undone any chunked coding: without a Content-Length the body ends with the connection.
    headers.push("connection", "close")
    this.socket.write(responseHead(status, res.statusMessage ?? "", headers))
    res.on("error", () => this.destroy())
    res.on("end", () => {
      this.finish()
      this.socket.end(() => this.socket.destroy())
    })
    res.pipe(this.socket, { end: false })
  }
}
