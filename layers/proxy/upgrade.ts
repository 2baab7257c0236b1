/**
 * Upgraded connections (WebSocket, or any protocol a request asks for with `Upgrade:`): the handshake
 * goes to a replica picked like any request, then the two sockets are spliced for the connection's
 * life, and the lease with them. Node's server hands these over as raw sockets, so answers are raw too.
 */
import { type ClientRequest, request as httpRequest, type IncomingMessage, STATUS_CODES } from "node:http"
import { Socket } from "node:net"
import { performance } from "node:perf_hooks"
import type { Duplex } from "node:stream"
import type { Replica } from "../../src/domain/Replica.ts"
import type { HealthProbeShape } from "../../src/HealthProbe.ts"
import type { Lease } from "../../src/LeaseStore.ts"
import type { ExchangeFailure, OutlierDetectorShape } from "../../src/OutlierDetector.ts"
import type { SelectorShape } from "../../src/Selector.ts"
import { choose, isRefusal, type RoutingContext } from "./choose.ts"
import { clientAddressOf, forwardRequestHeaders, forwardResponseHeaders } from "./headers.ts"
import { CONNECT_FAILURES } from "./upstream-errors.ts"

export interface UpgradeContext extends RoutingContext {
  readonly observe: SelectorShape["observe"]
  readonly health: HealthProbeShape
  readonly outliers: OutlierDetectorShape
  readonly summarize: (requestNumber: number) => void
  readonly connectTimeoutMs: number
  /** How long the replica may take to answer the handshake once connected. */
  readonly responseTimeoutMs: number
  readonly leaseDurationMs: number
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
const answer = (socket: Duplex, status: number, body: unknown): void => {
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
  context.summarize(context.stats.recordRequest())
  // Errors end in `close`, which is where the tunnel cleans up.
  socket.on("error", ignore)
  context.open.add(socket)
  socket.once("close", () => context.open.delete(socket))
  if (context.draining()) {
    answer(socket, 503, { error: "shutting_down", message: "the balancer is shutting down" })
    return
  }
  const choice = choose(context, undefined)
  if (isRefusal(choice)) {
    answer(socket, choice.status, choice.body)
    return
  }
  try {
    new Tunnel(context, req, socket, head, choice.decision.replica, choice.lease)
  } catch (error) {
    // node:http refuses to write some requests Node's parser let through (e.g. odd bytes in the path).
    context.leases.release(choice.lease)
    context.stats.recordFailure("bad_request")
    answer(socket, 400, {
      error: "bad_request",
      message: `the upgrade cannot be forwarded: ${String(error)}`,
    })
  }
}

/** One upgrade, from the handshake to the last byte; it owns the lease and both sockets. */
class Tunnel {
  private readonly upstream: ClientRequest
  private upstreamSocket: Duplex | undefined
  private timer: NodeJS.Timeout | undefined
  private renewal: NodeJS.Timeout | undefined
  /** The handshake got its answer (101 or another status). */
  private answered = false
  /** The lease is released; nothing more is counted. */
  private finished = false
  // The data plane reads the monotonic clock directly: a fiber per connection would cost more than it.
  private readonly dispatchedAt = performance.now()

  constructor(
    private readonly context: UpgradeContext,
    req: IncomingMessage,
    private readonly socket: Duplex,
    private readonly head: Buffer,
    private readonly replica: Replica,
    private lease: Lease,
  ) {
    const { headers } = forwardRequestHeaders(req.rawHeaders, clientAddressOf(req.socket.remoteAddress))
    // Hop-by-hop as they are, these two are what the upgrade asks the replica for.
    headers.push("connection", "upgrade", "upgrade", req.headers.upgrade ?? "")
    const origin = new URL(replica.origin)
    // Node adds no Host of its own to headers given as a list.
    if (req.headers.host === undefined) headers.push("host", origin.host)
    this.upstream = httpRequest(origin, { method: req.method, path: req.url ?? "/", headers, agent: false })
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

  /** Releases the lease, once; the sockets are left to the caller. */
  private finish(): void {
    if (this.finished) return
    this.finished = true
    clearTimeout(this.timer)
    clearInterval(this.renewal)
    this.context.leases.release(this.lease)
  }

  /** Cuts both sides at once. */
  private destroy(): void {
    this.finish()
    this.socket.destroy()
    this.upstream.destroy()
    this.upstreamSocket?.destroy()
  }

  /** Tells the selector and the outlier detector how the handshake went. */
  private observe(ok: boolean, failure: ExchangeFailure = "5xx"): void {
    this.context.observe(this.replica.id, performance.now() - this.dispatchedAt, ok)
    if (ok) this.context.outliers.reportSuccess(this.replica.id)
    else this.context.outliers.reportFailure(this.replica.id, failure)
  }

  private onClientClose(): void {
    if (!this.answered && !this.finished) {
      this.context.stats.recordFailure("client_abort")
      this.context.stats.recordNoResponse(this.replica.id, "aborted")
    }
    this.finish()
    if (this.upstreamSocket === undefined) this.upstream.destroy()
    else closeAfterFlush(this.upstreamSocket)
  }

  private onUpstreamClose(): void {
    this.finish()
    closeAfterFlush(this.socket)
  }

  /** The handshake failed before any answer: the client gets the balancer's own. */
  private refuse(status: 502 | 504, message: string, failure: ExchangeFailure): void {
    if (this.finished) return
    this.context.stats.recordFailure(status === 504 ? "upstream_timeout" : "upstream_error")
    this.context.stats.recordNoResponse(this.replica.id, "error")
    this.observe(false, failure)
    this.finish()
    this.upstream.destroy()
    answer(this.socket, status, {
      error: status === 504 ? "upstream_timeout" : "upstream_error",
      message: `replica ${this.replica.name} failed: ${message}`,
    })
  }

  private onUpstreamError(error: Error & { code?: string }): void {
    if (this.answered) {
      this.destroy()
      return
    }
    const code = error.code ?? error.name
    const connectFailed = CONNECT_FAILURES.has(code)
    if (connectFailed) this.context.health.reportFailure(this.replica.id, `${code}: ${error.message}`)
    this.refuse(502, `${code}: ${error.message}`, connectFailed ? "connect" : "reset")
  }

  private onTimeout(phase: "connect" | "response"): void {
    if (this.answered) return
    const ms = phase === "connect" ? this.context.connectTimeoutMs : this.context.responseTimeoutMs
    const reason = `no ${phase === "connect" ? "connection" : "answer to the upgrade"} within ${ms} ms`
    if (phase === "connect") this.context.health.reportFailure(this.replica.id, `connect timeout: ${reason}`)
    this.refuse(504, reason, "timeout")
  }

  private onUpgraded(res: IncomingMessage, upstreamSocket: Duplex, upstreamHead: Buffer): void {
    this.answered = true
    clearTimeout(this.timer)
    this.upstreamSocket = upstreamSocket
    upstreamSocket.on("error", ignore)
    upstreamSocket.once("close", () => this.onUpstreamClose())
    if (this.finished) {
      upstreamSocket.destroy()
      return
    }
    this.context.stats.recordResponse(this.replica.id, res.statusCode ?? 101)
    this.observe(true)
    keepOpen(this.socket)
    keepOpen(upstreamSocket)
    const headers = forwardResponseHeaders(res.rawHeaders.map((value) => Buffer.from(value, "latin1")))
    headers.push("connection", "upgrade", "upgrade", res.headers.upgrade ?? "")
    this.socket.write(responseHead(res.statusCode ?? 101, res.statusMessage ?? "", headers))
    if (upstreamHead.length > 0) this.socket.write(upstreamHead)
    if (this.head.length > 0) upstreamSocket.write(this.head)
    upstreamSocket.pipe(this.socket)
    this.socket.pipe(upstreamSocket)
  }

  private renew(): void {
    // A drain ends the connection before long; renewing then would count as requests finished.
    if (this.finished || this.context.draining()) return
    this.lease = this.context.leases.renew(this.lease)
  }

  /** The replica answered the handshake without upgrading (400, 404, ...): relay that, then close. */
  private onRefused(res: IncomingMessage): void {
    this.answered = true
    clearTimeout(this.timer)
    if (this.finished) {
      res.destroy()
      return
    }
    const status = res.statusCode ?? 502
    this.context.stats.recordResponse(this.replica.id, status)
    this.observe(status < 500)
    const headers = forwardResponseHeaders(res.rawHeaders.map((value) => Buffer.from(value, "latin1")))
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
