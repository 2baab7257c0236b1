/**
 * The data plane: a raw `node:http` server and one keep-alive undici Pool per endpoint, both owned by
 * this layer's scope. Effect's HTTP stack costs about ten times the raw path per request (see
 * docs/ARCHITECTURE.md, "Why the data plane is callback code"), so per-request work here is plain
 * callback code over state owned by the Effect services.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo, Server as NetServer } from "node:net"
import type { Duplex } from "node:stream"
import { Data, Effect, Layer } from "effect"
import type { Pool } from "undici"
import UndiciPool from "undici/lib/dispatcher/pool.js"
import { Admin } from "../../src/Admin.ts"
import { LbConfig } from "../../src/Config.ts"
import type { Endpoint } from "../../src/Endpoint.ts"
import { LeaseStore } from "../../src/LeaseStore.ts"
// biome-ignore lint/suspicious/noShadowRestrictedNames: the design card names the service Proxy
import { Proxy } from "../../src/Proxy.ts"
import { RouteTable } from "../../src/RouteTable.ts"
import { type DrainState, drain } from "./drain.ts"
import { type ForwardContext, forward } from "./forward.ts"
import { createRedirectServer } from "./redirect.ts"
import { makeTlsFront } from "./tls-front.ts"
import { type UpgradeContext, upgrade } from "./upgrade.ts"

/** The listener could not be opened (port taken, address not local, ...). */
export class ListenFailed extends Data.TaggedError("ListenFailed")<{
  readonly address: string
  readonly reason: string
}> {
  override get message(): string {
    return `cannot listen on ${this.address}: ${this.reason}`
  }
}

const listen = (server: NetServer, host: string, port: number) =>
  Effect.async<AddressInfo, ListenFailed>((resume) => {
    const onError = (error: Error) =>
      resume(Effect.fail(new ListenFailed({ address: `${host}:${port}`, reason: error.message })))
    server.once("error", onError)
    server.listen(port, host, () => {
      server.off("error", onError)
      resume(Effect.succeed(server.address() as AddressInfo))
    })
  })

/** The answer to a request Node's parser refused, by the parser's reason. */
const clientErrorResponse = (code: string | undefined): string => {
  const status =
    code === "HPE_HEADER_OVERFLOW"
      ? "431 Request Header Fields Too Large"
      : code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? "408 Request Timeout"
        : "400 Bad Request"
  return `HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`
}

export const layer = Layer.scoped(
  Proxy,
  Effect.gen(function* () {
    const config = yield* LbConfig
    const routes = yield* RouteTable
    const leases = yield* LeaseStore
    const admin = yield* Admin

    /** The endpoint's connection pool, opened on first use; the replica pool closes it on retirement. */
    const upstreamOf = (endpoint: Endpoint): Pool => {
      if (endpoint.upstream === undefined) {
        endpoint.upstream = new UndiciPool(endpoint.replica.origin, {
          connections: config.upstreamMaxConnections,
          connectTimeout: config.upstreamConnectTimeoutMs,
          headersTimeout: config.upstreamResponseTimeoutMs,
          bodyTimeout: config.upstreamIdleTimeoutMs,
          keepAliveTimeout: config.upstreamKeepAliveTimeoutMs,
          // A replica's own `Keep-Alive: timeout=N` may shorten that, never lengthen it.
          keepAliveMaxTimeout: config.upstreamKeepAliveTimeoutMs,
        })
      }
      return endpoint.upstream as Pool
    }
    // Runs after the drain: whatever is still under way (a connection attempt, a request whose client
    // was cut at the deadline) is past DRAIN_TIMEOUT, and a graceful close would wait for it.
    yield* Effect.addFinalizer(() =>
      Effect.promise(() =>
        Promise.allSettled(
          routes
            .clusters()
            .flatMap(({ pool }) => pool.endpoints().map((endpoint) => endpoint.upstream?.destroy())),
        ),
      ),
    )

    const context: ForwardContext = {
      routes,
      scheme: config.tlsCertFile === "" ? "http" : "https",
      upstreamOf,
      maxRequestBodyBytes: config.maxRequestBodyBytes,
      forwardLoadReports: config.forwardLoadReports,
    }

    const drainState: DrainState = { draining: false }
    const upgraded = new Set<Duplex>()
    const upgradeContext: UpgradeContext = {
      routes,
      scheme: context.scheme,
      connectTimeoutMs: config.upstreamConnectTimeoutMs,
      responseTimeoutMs: config.upstreamResponseTimeoutMs,
      leaseDurationMs: config.leaseDurationMs,
      forwardLoadReports: config.forwardLoadReports,
      open: upgraded,
      draining: () => drainState.draining,
    }

    const handle = (req: IncomingMessage, res: ServerResponse) => {
      // The one check a drain costs per request: keep-alive clients are told to go away (an HTTP/2
      // client learns it from the GOAWAY the drain sends).
      if (drainState.draining && req.httpVersionMajor === 1) res.setHeader("connection", "close")
      const url = req.url ?? "/"
      const query = url.indexOf("?")
      if (admin.handle(req, res, query === -1 ? url : url.slice(0, query))) return
      forward(context, req, res)
    }

    // Node refuses a head timeout longer than the whole request's; the shorter one bounds both.
    const headerTimeoutMs = Math.min(config.clientHeaderTimeoutMs, config.clientRequestTimeoutMs)
    const server = createServer(
      {
        keepAliveTimeout: config.clientKeepAliveTimeoutMs,
        headersTimeout: headerTimeoutMs,
        requestTimeout: config.clientRequestTimeoutMs,
        maxHeaderSize: config.clientMaxHeaderBytes,
        // Node enforces the two timeouts above only when it checks its connections: by default every
        // 30 s, which would let a slowloris client hold a connection far past CLIENT_HEADER_TIMEOUT.
        connectionsCheckingInterval: Math.min(1000, headerTimeoutMs / 2),
      },
      handle,
    )
    server.on("clientError", (error: NodeJS.ErrnoException, socket) => {
      // Malformed or too slow requests get their 4xx and cost only their own connection. A response
      // already under way on it (a pipelined request went bad, an upload ran out of time) must not
      // get a status line in the middle of its body: that connection is only cut.
      const current = (socket as { _httpMessage?: ServerResponse })._httpMessage
      const answerable = socket.writable && error.code !== "ECONNRESET" && !current?.headersSent
      if (answerable) socket.end(clientErrorResponse(error.code))
      else socket.destroy()
    })
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      upgrade(upgradeContext, req, socket, head),
    )
    const front =
      config.tlsCertFile === ""
        ? { server, listener: server }
        : yield* makeTlsFront({
            files: { certFile: config.tlsCertFile, keyFile: config.tlsKeyFile },
            http1: server,
            handle,
            handshakeTimeoutMs: headerTimeoutMs,
          })
    // Released before the pools above (finalizers run in reverse): in-flight requests still need them.
    const address = yield* Effect.acquireRelease(
      listen(front.server, config.listenHost, config.listenPort),
      () =>
        drain({
          server: front.listener,
          state: drainState,
          upgraded,
          leases,
          timeoutMs: config.drainTimeoutMs,
        }),
    )
    if (config.httpRedirectPort !== undefined) {
      const redirects = createRedirectServer(address.port)
      yield* Effect.acquireRelease(listen(redirects, config.listenHost, config.httpRedirectPort), () =>
        Effect.sync(() => redirects.close()),
      )
    }
    yield* Effect.logInfo("load balancer listening").pipe(
      Effect.annotateLogs({
        address: `${address.address}:${address.port}`,
        scheme: context.scheme,
        routes: routes
          .clusters()
          .map(({ route, algorithm }) => `${route.name}(${algorithm})`)
          .join(","),
        source: routes.loaded().source,
      }),
    )
    return { address: { host: address.address, port: address.port } }
  }),
)
