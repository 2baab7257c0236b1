/**
 * Child process: one replica of the faulty service, so a test can SIGKILL it like a crashed
 * container. Started by `processes.ts` with `node --import tsx`; told its name, host and port through
 * the environment, and switched between behaviours over the IPC channel.
 *
 * Paths (as test/support/replicas.ts answers them): `/health`, `/slow?ms=N` (`&head=late` holds the
 * headers back too), `/tiny` (a 2-byte body, for the soak), anything else echoes the request.
 * Every answer carries `x-replica: <name>`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

/**
 * `ok` answers; `hang` reads every request, `/health` included, and never answers (a wedged process
 * whose sockets the kernel still accepts); `error` answers 500 at once to everything but `/health`
 * (an application broken behind a health check that still passes).
 */
export type ReplicaMode = "ok" | "hang" | "error"

/** Messages the parent sends. */
export type ToReplica = { readonly type: "mode"; readonly mode: ReplicaMode } | { readonly type: "hits" }

/** Messages this process sends back. */
export type FromReplica =
  | { readonly type: "listening"; readonly port: number }
  | { readonly type: "mode"; readonly mode: ReplicaMode }
  | { readonly type: "hits"; readonly hits: Record<string, number> }

const name = process.env.REPLICA_NAME ?? "replica"
const host = process.env.REPLICA_HOST ?? "127.0.0.2"
const wantedPort = Number(process.env.REPLICA_PORT ?? "0")

const send = (message: FromReplica) => process.send?.(message)

let mode: ReplicaMode = "ok"
const hits: Record<string, number> = {}
const TINY = Buffer.from("ok")

const sendJson = (res: ServerResponse, status: number, body: unknown) => {
  const payload = JSON.stringify(body)
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(payload),
    "x-replica": name,
  })
  res.end(payload)
}

const handle = (req: IncomingMessage, res: ServerResponse) => {
  const url = new URL(req.url ?? "/", "http://replica")
  hits[url.pathname] = (hits[url.pathname] ?? 0) + 1
  // The request is read in every mode: a hung replica has taken the request, it just never answers.
  req.resume()
  if (mode === "hang") return
  if (mode === "error" && url.pathname !== "/health") {
    sendJson(res, 500, { replica: name, error: "broken" })
    return
  }
  switch (url.pathname) {
    case "/health":
      sendJson(res, 200, { status: "healthy", replica: name })
      return
    case "/tiny":
      res.writeHead(200, { "content-type": "text/plain", "content-length": TINY.length, "x-replica": name })
      res.end(TINY)
      return
    case "/slow": {
      const ms = Math.max(0, Number(url.searchParams.get("ms") ?? 1000) || 0)
      const late = url.searchParams.get("head") === "late"
      if (!late) {
        res.writeHead(200, { "content-type": "application/json", "x-replica": name })
        res.flushHeaders()
      }
      const body = { replica: name, slept_ms: ms }
      const timer = setTimeout(() => (late ? sendJson(res, 200, body) : res.end(JSON.stringify(body))), ms)
      res.on("close", () => clearTimeout(timer))
      return
    }
    default:
      req.on("end", () => sendJson(res, 200, { replica: name, method: req.method, url: req.url }))
  }
}

const server = createServer(handle)
process.on("message", (message: ToReplica) => {
  if (message.type === "mode") {
    mode = message.mode
    send({ type: "mode", mode })
  } else if (message.type === "hits") {
    send({ type: "hits", hits })
  }
})
// The test runner went away: a replica must not outlive it.
process.on("disconnect", () => process.exit(0))
server.listen(wantedPort, host, () =>
  send({ type: "listening", port: (server.address() as AddressInfo).port }),
)
