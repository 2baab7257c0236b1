/**
 * Real replica servers (node:http) on distinct loopback hosts, standing in for the balanced service:
 * each says who answered, streams and hashes large bodies, answers slowly, stalls or drops the
 * connection on demand, echoes WebSocket messages on `/ws`, counts the connections each path arrives
 * on, and can be stopped and restarted on the same address.
 */
import { createHash } from "node:crypto"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo, Socket } from "node:net"
import { type Duplex, pipeline } from "node:stream"
import { WebSocketServer } from "ws"
import { patternStream } from "./pattern.ts"
import { waitFor } from "./wait.ts"

export interface ReplicaServer {
  /** `replica-1`, ...: the `x-replica` header and `replica` field of every answer. */
  readonly name: string
  readonly host: string
  readonly port: number
  /** `http://host:port`, as given to the balancer in `REPLICAS`. */
  readonly origin: string
  /** `host:port`: the id the balancer gives a replica configured through `REPLICAS`. */
  readonly id: string
  /** Requests received on `path` (health probes land on `/health`). */
  readonly hits: (path: string) => number
  /** Responses whose connection closed before they were complete (the peer gave up). */
  readonly aborted: () => number
  /** The connections that carried at least one request to `path`: since start, open now, most open at once. */
  readonly connections: (path: string) => PathConnections
  /** The most requests (health probes aside) it was handling at once. */
  readonly peakInFlight: () => number
  /** From now on holds every request but health probes this long before handling it, as a slowed replica. */
  readonly setDelay: (ms: number) => void
  /** From now on answers every request to `path` with `status` and a JSON body; undefined restores it. */
  readonly setStatus: (path: string, status: number | undefined) => void
  /** Closes the listener and every connection, as a crashed replica would. */
  readonly stop: () => Promise<void>
  /** Listens again on the same address. */
  readonly restart: () => Promise<void>
}

export interface PathConnections {
  readonly opened: number
  readonly open: number
  readonly peak: number
}

export interface ReplicaSet {
  readonly replicas: ReadonlyArray<ReplicaServer>
  /** The `REPLICAS` value naming them all. */
  readonly origins: string
  readonly stopAll: () => Promise<void>
}

const sendJson = (
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) => {
  const payload = JSON.stringify(body)
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(payload),
  })
  res.end(payload)
}

const numberParam = (url: URL, name: string, fallback: number): number => {
  const value = Number(url.searchParams.get(name) ?? fallback)
  return Number.isFinite(value) && value >= 0 ? value : fallback
}

interface Counters {
  readonly hits: Map<string, number>
  aborted: number
  readonly connections: Map<string, { opened: number; open: number; peak: number }>
  /** The paths each connection has carried so far. */
  readonly pathsOf: WeakMap<Socket, Set<string>>
  readonly statuses: Map<string, number>
  delayMs: number
  /** Requests other than health probes being handled now, and the most at once. */
  inFlight: number
  peakInFlight: number
}

/** Counts `socket` among the connections of `path`, the first time it carries a request there. */
const countConnection = (counters: Counters, socket: Socket, path: string) => {
  let paths = counters.pathsOf.get(socket)
  if (paths === undefined) {
    const carried = new Set<string>()
    paths = carried
    counters.pathsOf.set(socket, carried)
    socket.once("close", () => {
      for (const carriedPath of carried) counters.connections.get(carriedPath)!.open--
    })
  }
  if (paths.has(path)) return
  paths.add(path)
  const count = counters.connections.get(path) ?? { opened: 0, open: 0, peak: 0 }
  counters.connections.set(path, count)
  count.opened++
  count.open++
  count.peak = Math.max(count.peak, count.open)
}

const handler = (name: string, counters: Counters) => {
  const handle = answer(name, counters)
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (req.url !== "/health") {
      counters.inFlight++
      counters.peakInFlight = Math.max(counters.peakInFlight, counters.inFlight)
      res.once("close", () => counters.inFlight--)
    }
    if (counters.delayMs > 0 && req.url !== "/health") setTimeout(handle, counters.delayMs, req, res)
    else handle(req, res)
  }
}

const answer =
  (name: string, counters: Counters) =>
  (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? "/", "http://replica")
    counters.hits.set(url.pathname, (counters.hits.get(url.pathname) ?? 0) + 1)
    countConnection(counters, req.socket, url.pathname)
    res.on("close", () => {
      if (!res.writableFinished) counters.aborted++
    })
    res.setHeader("x-replica", name)
    const forced = counters.statuses.get(url.pathname)
    if (forced !== undefined) {
      req.resume()
      sendJson(res, forced, { replica: name, status: forced })
      return
    }
    switch (url.pathname) {
      case "/reset":
        // `?on=replica-N` (repeatable): those replicas drop the connection without answering, as a
        // killed one would.
        if (url.searchParams.getAll("on").includes(name)) {
          req.socket.destroy()
          return
        }
        sendJson(res, 200, { replica: name })
        return
      case "/health":
        sendJson(res, 200, { status: "healthy", replica: name })
        return
      case "/download": {
        const bytes = numberParam(url, "bytes", 0)
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": bytes })
        // pipeline destroys the pattern stream when the response is cut short; the close handler counts it.
        pipeline(patternStream(bytes), res, () => {})
        return
      }
      case "/upload": {
        const hash = createHash("sha256")
        let bytes = 0
        req.on("data", (chunk: Buffer) => {
          bytes += chunk.length
          hash.update(chunk)
        })
        req.on("end", () => sendJson(res, 200, { replica: name, bytes, sha256: hash.digest("hex") }))
        return
      }
      case "/slow": {
        const ms = numberParam(url, "ms", 1000)
        // By default headers go out at once, so the client learns which replica holds the request while
        // it waits; `head=late` holds them back too, as a replica that is slow to answer at all.
        const late = url.searchParams.get("head") === "late"
        if (!late) {
          res.writeHead(200, { "content-type": "application/json" })
          res.flushHeaders()
        }
        const body = { replica: name, slept_ms: ms }
        const timer = setTimeout(() => (late ? sendJson(res, 200, body) : res.end(JSON.stringify(body))), ms)
        res.on("close", () => clearTimeout(timer))
        return
      }
      case "/stall": {
        // Half of a declared body, then silence until the peer gives up: a replica stuck mid-response.
        const bytes = numberParam(url, "bytes", 1024)
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": 2 * bytes })
        res.write(Buffer.alloc(bytes, 0x61))
        return
      }
      case "/load-report": {
        // The replica's own load, ORCA's in-band way: the header carries whatever `value` says, from
        // every replica or only the one `from` names.
        const from = url.searchParams.get("from")
        const reports = from === null || from === name
        sendJson(
          res,
          200,
          { replica: name },
          reports ? { "endpoint-load-metrics": url.searchParams.get("value") ?? "" } : {},
        )
        return
      }
      case "/hop-by-hop":
        // Headers that describe this connection only: a proxy must not pass them on.
        sendJson(
          res,
          200,
          { replica: name },
          {
            connection: "x-replica-hop",
            "x-replica-hop": "connection-scoped",
            "keep-alive": "timeout=5",
            "proxy-authenticate": "Basic",
            "x-end-to-end": "kept",
          },
        )
        return
      default:
        // Everything else echoes the request, so tests can see what the balancer forwarded.
        req.resume()
        req.on("end", () =>
          sendJson(res, 200, {
            replica: name,
            method: req.method,
            url: req.url,
            headers: req.headers,
            raw_headers: req.rawHeaders,
          }),
        )
    }
  }

/**
 * `Upgrade:` requests: `/ws` is a WebSocket that echoes every message, except the text `whoami`, which
 * it answers with `{ replica, headers }` (the upgrade request's headers); `/ws?status=N` answers N
 * without upgrading. Upgrade requests count in `hits` like any other.
 */
const upgradeHandler =
  (name: string, counters: Counters, sockets: WebSocketServer) =>
  (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = new URL(req.url ?? "/", "http://replica")
    counters.hits.set(url.pathname, (counters.hits.get(url.pathname) ?? 0) + 1)
    socket.on("error", () => {})
    const status = url.pathname === "/ws" ? numberParam(url, "status", 101) : 404
    if (status !== 101) {
      const body = JSON.stringify({ replica: name, status })
      socket.end(
        `HTTP/1.1 ${status} Not Upgraded\r\ncontent-type: application/json\r\nx-replica: ${name}\r\n` +
          `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      )
      return
    }
    sockets.handleUpgrade(req, socket, head, (ws) => {
      ws.on("message", (data, isBinary) => {
        if (!isBinary && data.toString() === "whoami")
          ws.send(JSON.stringify({ replica: name, headers: req.headers }))
        else ws.send(data, { binary: isBinary })
      })
    })
  }

const listen = (server: Server, host: string, port: number) =>
  new Promise<AddressInfo>((resolve, reject) => {
    server.once("error", reject)
    server.listen(port, host, () => {
      server.off("error", reject)
      resolve(server.address() as AddressInfo)
    })
  })

const startReplica = async (
  index: number,
  wantedPort: number,
  options: ReplicaOptions,
): Promise<ReplicaServer> => {
  const name = `replica-${index + 1}`
  // 127.0.0.2, .3, .4, ...: distinct hosts, so ids and origins never depend on port numbers alone.
  const host = `127.0.0.${index + 2}`
  const counters: Counters = {
    hits: new Map(),
    aborted: 0,
    connections: new Map(),
    pathsOf: new WeakMap(),
    statuses: new Map(),
    delayMs: 0,
    inFlight: 0,
    peakInFlight: 0,
  }
  const handle = handler(name, counters)
  const sockets = new WebSocketServer({ noServer: true })
  const serve = () => {
    const server = createServer(handle).on("upgrade", upgradeHandler(name, counters, sockets))
    if (options.keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = options.keepAliveTimeoutMs
    return server
  }
  let server = serve()
  const { port } = await listen(server, host, wantedPort)
  let running = true

  const stop = async () => {
    if (!running) return
    running = false
    await new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
      // Upgraded connections are no longer the server's to close.
      for (const ws of sockets.clients) ws.terminate()
    })
  }

  const restart = async () => {
    if (running) return
    // Another listener could hold the port for a moment after ours closed; retry, but not forever.
    await waitFor(
      `${name} to listen again on ${host}:${port}`,
      async () => {
        server = serve()
        await listen(server, host, port)
        return true
      },
      { timeoutMs: 5_000, intervalMs: 100 },
    )
    running = true
  }

  return {
    name,
    host,
    port,
    origin: `http://${host}:${port}`,
    id: `${host}:${port}`,
    hits: (path) => counters.hits.get(path) ?? 0,
    aborted: () => counters.aborted,
    connections: (path) => ({ ...(counters.connections.get(path) ?? { opened: 0, open: 0, peak: 0 }) }),
    peakInFlight: () => counters.peakInFlight,
    setDelay: (ms) => {
      counters.delayMs = ms
    },
    setStatus: (path, status) => {
      if (status === undefined) counters.statuses.delete(path)
      else counters.statuses.set(path, status)
    },
    stop,
    restart,
  }
}

/** Starts the replicas numbered `indices` on `port` (0: each its own free one), all or none. */
const startGroup = async (
  indices: ReadonlyArray<number>,
  port: number,
  options: ReplicaOptions,
): Promise<Array<ReplicaServer>> => {
  const started = await Promise.allSettled(indices.map((index) => startReplica(index, port, options)))
  const replicas = started.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []))
  const failed = started.find((result) => result.status === "rejected")
  if (failed === undefined) return replicas
  await Promise.all(replicas.map((replica) => replica.stop()))
  throw failed.reason
}

/**
 * One port for every replica, as containers of one service have (agents' discovery addresses them all
 * at `TARGET_PORT`): the first replica picks a free port and the others take it on their own hosts.
 */
const startOnOnePort = (count: number, options: ReplicaOptions): Promise<Array<ReplicaServer>> =>
  waitFor(
    `${count} replicas to share one free port`,
    async () => {
      const first = await startReplica(0, 0, options)
      const rest = Array.from({ length: count - 1 }, (_, i) => i + 1)
      try {
        return [first, ...(await startGroup(rest, first.port, options))]
      } catch {
        // The port was taken on another host: try another.
        await first.stop()
        return undefined
      }
    },
    { timeoutMs: 5_000, intervalMs: 10 },
  )

export interface ReplicaOptions {
  /** Every replica on the same port (each on its own host), for discovery through agents. */
  readonly samePort?: boolean
  /** How long the replicas keep an idle connection open; Node's default (5 s) unless told. */
  readonly keepAliveTimeoutMs?: number
}

/** Starts `count` replicas (at most 252: one loopback host each, from 127.0.0.2), each on a free port. */
export const startReplicas = async (count = 3, options: ReplicaOptions = {}): Promise<ReplicaSet> => {
  const indices = Array.from({ length: count }, (_, index) => index)
  const replicas = options.samePort
    ? await startOnOnePort(count, options)
    : await startGroup(indices, 0, options)
  const stopAll = async () => {
    await Promise.all(replicas.map((replica) => replica.stop()))
  }
  return {
    replicas,
    origins: replicas.map((replica) => replica.origin).join(","),
    stopAll,
  }
}
