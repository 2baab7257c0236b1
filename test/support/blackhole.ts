/**
 * A loopback address and port where a TCP handshake never completes: a socket that listens but never
 * accepts, its accept queue filled, so the kernel leaves further connection attempts unanswered.
 */
import { connect, type Socket } from "node:net"
import { Worker } from "node:worker_threads"
import { within } from "./wait.ts"

export interface Blackhole {
  readonly host: string
  readonly port: number
  /** `http://host:port`, as given to the balancer in `REPLICAS`. */
  readonly origin: string
  readonly stop: () => Promise<void>
}

// The listener lives in a worker whose event loop is blocked right after `listen`: the kernel queues
// connections, and nothing ever accepts them. The worker wakes only to close it.
const LISTENER = `
const { parentPort, workerData } = require("node:worker_threads")
const { createServer } = require("node:net")
const server = createServer()
server.on("error", () => parentPort.postMessage(0))
server.listen({ host: workerData.host, port: 0, backlog: 1 }, () => {
  parentPort.postMessage(server.address().port)
  Atomics.wait(new Int32Array(workerData.wake), 0, 0)
  server.close()
})
`

/** Whether a connection to `host:port` completes within `ms`; the socket is kept either way. */
const attempt = (host: string, port: number, ms: number, sockets: Array<Socket>) =>
  new Promise<boolean>((resolve) => {
    const socket = connect({ host, port })
    sockets.push(socket)
    const timer = setTimeout(() => resolve(false), ms)
    const settle = (connected: boolean) => {
      clearTimeout(timer)
      resolve(connected)
    }
    socket.on("error", () => settle(false))
    socket.once("connect", () => settle(true))
  })

/** Listens on `host` (a loopback address) and fills the accept queue before returning. */
export const startBlackhole = async (host: string): Promise<Blackhole> => {
  const wake = new SharedArrayBuffer(4)
  const worker = new Worker(LISTENER, { eval: true, workerData: { host, wake } })
  const fillers: Array<Socket> = []
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()))
  let stopped: Promise<unknown> | undefined
  const stop = async () => {
    for (const socket of fillers) socket.destroy()
    Atomics.store(new Int32Array(wake), 0, 1)
    Atomics.notify(new Int32Array(wake), 0)
    stopped ??= within(`the listener on ${host} to close`, 5_000, exited).catch(() => worker.terminate())
    await stopped
  }
  try {
    const port = await within(
      `a listener on ${host}`,
      5_000,
      new Promise<number>((resolve, reject) => {
        worker.once("message", resolve)
        worker.once("error", reject)
      }),
    )
    if (port === 0) throw new Error(`cannot listen on ${host}`)
    // Connections complete until the queue is full; two in a row left pending say it is.
    let pendingInARow = 0
    while (pendingInARow < 2) {
      if (fillers.length >= 64) throw new Error(`the accept queue on ${host}:${port} never filled`)
      pendingInARow = (await attempt(host, port, 250, fillers)) ? 0 : pendingInARow + 1
    }
    return { host, port, origin: `http://${host}:${port}`, stop }
  } catch (error) {
    await stop()
    throw error
  }
}
