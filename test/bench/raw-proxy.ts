/**
 * Child process: the yardstick proxy. A raw `node:http` server and one undici Pool per backend,
 * round-robin, streaming through `Pool.dispatch` with the same pool settings, header rules and
 * handler technique as the balancer's data plane (layers/proxy/forward.ts), but with no leases,
 * stats, health or selection. Whatever the balancer costs beyond this is its own overhead.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { type Dispatcher, Pool } from "undici"

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "expect",
])

/** The extra hop-by-hop names a `Connection` header lists, if there is one. */
const connectionListed = (raw: ReadonlyArray<string>): Set<string> | undefined => {
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() !== "connection") continue
    return new Set(raw[i + 1]!.split(",").map((token) => token.trim().toLowerCase()))
  }
  return undefined
}

const dropped = (lower: string, listed: Set<string> | undefined) =>
  HOP_BY_HOP.has(lower) || listed?.has(lower) === true

const requestHeaders = (req: IncomingMessage): { headers: Array<string>; hasBody: boolean } => {
  const raw = req.rawHeaders
  const listed = connectionListed(raw)
  const headers: Array<string> = []
  let hasBody = false
  let forwardedFor: string | undefined
  let host: string | undefined
  let hasProto = false
  let hasForwardedHost = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    const value = raw[i + 1]!
    const lower = name.toLowerCase()
    if (lower === "transfer-encoding") hasBody = true
    else if (lower === "content-length") hasBody ||= value.trim() !== "0"
    if (dropped(lower, listed)) continue
    if (lower === "x-forwarded-for") {
      forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`
      continue
    }
    if (lower === "host") host = value
    else if (lower === "x-forwarded-proto") hasProto = true
    else if (lower === "x-forwarded-host") hasForwardedHost = true
    headers.push(name, value)
  }
  const client = req.socket.remoteAddress ?? "unknown"
  headers.push("x-forwarded-for", forwardedFor === undefined ? client : `${forwardedFor}, ${client}`)
  if (!hasProto) headers.push("x-forwarded-proto", "http")
  if (!hasForwardedHost && host !== undefined) headers.push("x-forwarded-host", host)
  return { headers, hasBody }
}

const responseHeaders = (raw: ReadonlyArray<Buffer>): Array<string> => {
  const strings = raw.map((part) => part.toString("latin1"))
  const listed = connectionListed(strings)
  const headers: Array<string> = []
  for (let i = 0; i < strings.length; i += 2) {
    if (!dropped(strings[i]!.toLowerCase(), listed)) headers.push(strings[i]!, strings[i + 1]!)
  }
  return headers
}

const flushHeadersIfIdle = (exchange: Exchange) => exchange.flushHeadersIfIdle()

/** One request's dispatch handler: streams the response back with backpressure, aborts on client close. */
class Exchange implements Dispatcher.DispatchHandler {
  private abort: ((reason?: Error) => void) | undefined
  private resume: (() => void) | undefined
  private bodyStarted = false
  private done = false

  constructor(private readonly res: ServerResponse) {
    res.once("close", () => {
      if (this.done) return
      this.done = true
      this.abort?.(new Error("client closed the connection"))
    })
  }

  onConnect(abort: (reason?: Error) => void): void {
    if (this.done) abort(new Error("client closed the connection"))
    else this.abort = abort
  }

  onHeaders(statusCode: number, rawHeaders: Array<Buffer>, resume: () => void, message?: string): boolean {
    if (statusCode < 200 || this.done) return true
    this.resume = resume
    this.res.writeHead(statusCode, message ?? "", responseHeaders(rawHeaders))
    // As the balancer does: headers a backend sends before its body reach the client at once.
    process.nextTick(flushHeadersIfIdle, this)
    return true
  }

  flushHeadersIfIdle(): void {
    if (!this.done && !this.bodyStarted) this.res.flushHeaders()
  }

  onData(chunk: Buffer): boolean {
    this.bodyStarted = true
    if (this.done || this.res.write(chunk)) return true
    this.res.once("drain", this.resume!)
    return false
  }

  onComplete(): void {
    if (this.done) return
    this.done = true
    this.res.end()
  }

  onError(error: Error): void {
    if (this.done) return
    this.done = true
    if (this.res.headersSent) this.res.destroy(error)
    else this.res.writeHead(502, { "content-length": 0 }).end()
  }
}

// The balancer's defaults: UPSTREAM_MAX_CONNECTIONS, UPSTREAM_CONNECT_TIMEOUT, UPSTREAM_RESPONSE_TIMEOUT.
const pools = (process.env.BENCH_BACKENDS ?? "").split(",").map(
  (origin) =>
    [
      origin,
      new Pool(origin, {
        connections: 256,
        connectTimeout: 5_000,
        headersTimeout: 60_000,
        bodyTimeout: 60_000,
      }),
    ] as const,
)
let turn = 0

const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  const [origin, pool] = pools[turn++ % pools.length]!
  const { headers, hasBody } = requestHeaders(req)
  pool.dispatch(
    {
      origin,
      path: req.url ?? "/",
      method: req.method as Dispatcher.HttpMethod,
      headers,
      body: hasBody ? req : null,
    },
    new Exchange(res),
  )
})
server.listen(0, "127.0.0.1", () => process.send?.((server.address() as AddressInfo).port))
