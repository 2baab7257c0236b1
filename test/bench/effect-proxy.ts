/**
 * Child process: the alternative the balancer's data plane is measured against. The same yardstick
 * as raw-proxy.ts — round-robin over the backends, both bodies streamed, hop-by-hop headers dropped —
 * written with @effect/platform's HttpServer and HttpClient (over undici) instead of plain callbacks.
 */
import { createServer } from "node:http"
import { HttpBody, HttpClient, HttpClientRequest, HttpServer, HttpServerRequest } from "@effect/platform"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { NodeHttpClient, NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer"])

const forwarded = (headers: Readonly<Record<string, string>>): Record<string, string> => {
  const kept: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) if (!HOP_BY_HOP.has(name)) kept[name] = value
  return kept
}

const origins = (process.env.BENCH_BACKENDS ?? "").split(",")
let turn = 0

const proxy = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const client = yield* HttpClient.HttpClient
  const origin = origins[turn++ % origins.length]!
  const length = request.headers["content-length"]
  const hasBody =
    request.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0")
  const outgoing = HttpClientRequest.make(request.method)(`${origin}${request.url}`, {
    headers: forwarded(request.headers),
    body: hasBody ? HttpBody.stream(request.stream) : HttpBody.empty,
  })
  const response = yield* client.execute(outgoing)
  const contentLength = response.headers["content-length"]
  return HttpServerResponse.stream(response.stream, {
    status: response.status,
    headers: forwarded(response.headers),
    ...(contentLength === undefined ? {} : { contentLength: Number(contentLength) }),
  })
}).pipe(Effect.catchAll(() => Effect.succeed(HttpServerResponse.empty({ status: 502 }))))

const main = Effect.gen(function* () {
  const server = yield* HttpServer.HttpServer
  yield* server.serve(proxy)
  process.send?.((server.address as HttpServer.TcpAddress).port)
  return yield* Effect.never
}).pipe(
  Effect.scoped,
  Effect.provide(
    Layer.merge(
      NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }),
      NodeHttpClient.layerUndici,
    ),
  ),
)

NodeRuntime.runMain(main)
