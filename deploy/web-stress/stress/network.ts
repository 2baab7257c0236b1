/**
 * Network stress: bytes written over TCP at a set rate, to NETWORK_STRESS_TARGET or, without one, to a
 * sink in this same process over loopback. Loopback traffic never crosses a container's eth0, so
 * `docker stats` does not see it; a target on another container (e.g. one with NETWORK_SINK_PORT) does.
 */
import { once } from "node:events"
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net"
import type { Endpoint } from "../config.ts"

/** Bytes per second in one megabit per second. */
const BYTES_PER_MBIT = 125_000
const CHUNK = 64 * 1024
const BLOCK = Buffer.alloc(CHUNK, 0xa5)
const RETRY_MS = 1_000
const CONNECT_TIMEOUT_MS = 5_000

/** Accepts TCP connections and discards what arrives, counting it. */
export class Sink {
  private readonly sockets = new Set<Socket>()
  private readonly server: Server
  private bytes = 0

  constructor() {
    this.server = createServer((socket) => {
      this.sockets.add(socket)
      socket.on("data", (chunk: Buffer) => {
        this.bytes += chunk.length
      })
      socket.on("error", () => {})
      socket.on("close", () => this.sockets.delete(socket))
    })
  }

  async listen(port: number, host: string): Promise<Endpoint> {
    this.server.listen(port, host)
    await once(this.server, "listening")
    const address = this.server.address() as AddressInfo
    return { host: address.address, port: address.port }
  }

  received(): number {
    return this.bytes
  }

  async close(): Promise<void> {
    if (!this.server.listening) return
    const closed = once(this.server, "close")
    this.server.close()
    for (const socket of this.sockets) socket.destroy()
    await closed
  }
}

export interface NetworkStatus {
  readonly network_mbps: number
  readonly network_peer: string | null
  readonly network_sent_bytes: number
  readonly network_error: string | null
}

export class NetworkLoad {
  private mbps = 0
  private socket: Socket | undefined
  private peer: string | null = null
  private connecting = false
  private nextAttemptAt = 0
  /** Bytes the current connection may still send: a token bucket, refilled at the rate on each tick. */
  private allowance = 0
  private lastTick = 0
  private sentByClosed = 0
  private lastError: string | null = null
  private loopbackSink: { readonly sink: Sink; readonly address: Promise<Endpoint> } | undefined

  constructor(private readonly target: Endpoint | undefined) {}

  /** Called on every stress tick with the rate wanted now (`now` in monotonic milliseconds). */
  setMbps(mbps: number, now: number): void {
    this.mbps = Math.max(0, mbps)
    if (this.mbps === 0) {
      this.disconnect()
      return
    }
    const socket = this.socket
    if (socket === undefined) {
      if (!this.connecting && now >= this.nextAttemptAt) void this.connect(now)
      return
    }
    const rate = this.mbps * BYTES_PER_MBIT
    // A quarter second of credit at most: a stalled peer must not earn a burst that floods it later.
    this.allowance = Math.min(this.allowance + (rate * Math.max(0, now - this.lastTick)) / 1000, rate / 4)
    this.lastTick = now
    // Never queue more than ~0.2 s in user space: what the kernel will not take is not "sent".
    const highWater = Math.max(1024 * 1024, rate / 5)
    while (this.allowance >= 1 && socket.writableLength < highWater) {
      const size = Math.min(CHUNK, Math.floor(this.allowance))
      socket.write(size === CHUNK ? BLOCK : BLOCK.subarray(0, size))
      this.allowance -= size
    }
  }

  status(): NetworkStatus {
    return {
      network_mbps: Math.round(this.mbps * 100) / 100,
      network_peer: this.socket === undefined ? null : this.peer,
      network_sent_bytes: this.sentByClosed + (this.socket?.bytesWritten ?? 0),
      network_error: this.lastError,
    }
  }

  /** Bytes the in-process sink has received (0 when a target is configured). */
  loopbackReceived(): number {
    return this.loopbackSink?.sink.received() ?? 0
  }

  async close(): Promise<void> {
    this.mbps = 0
    this.disconnect()
    await this.loopbackSink?.sink.close()
  }

  private async connect(now: number): Promise<void> {
    this.connecting = true
    try {
      const peer = this.target ?? (await this.startLoopbackSink())
      const socket = connect(peer.port, peer.host)
      socket.setNoDelay(true)
      // A peer that drops SYNs would hold us in "connecting" for the kernel's two minutes.
      socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy(new Error("connect timed out")))
      await once(socket, "connect")
      socket.setTimeout(0)
      socket.on("error", (error) => {
        this.lastError = `${peer.host}:${peer.port}: ${error.message}`
      })
      socket.on("close", () => this.retire(socket))
      // Whatever the peer says back is read and dropped, so it never fills our receive buffer.
      socket.resume()
      if (this.mbps === 0) {
        socket.destroy()
        return
      }
      this.socket = socket
      this.peer = `${peer.host}:${peer.port}`
      this.lastError = null
      this.allowance = 0
      this.lastTick = performance.now()
    } catch (error) {
      const where = this.target === undefined ? "loopback sink" : `${this.target.host}:${this.target.port}`
      this.lastError = `${where}: ${error instanceof Error ? error.message : String(error)}`
      this.nextAttemptAt = now + RETRY_MS
    } finally {
      this.connecting = false
    }
  }

  private startLoopbackSink(): Promise<Endpoint> {
    if (this.loopbackSink === undefined) {
      const sink = new Sink()
      const address = sink.listen(0, "127.0.0.1")
      this.loopbackSink = { sink, address }
      // A sink that failed to listen is forgotten, so the next attempt starts a fresh one.
      address.catch(() => {
        if (this.loopbackSink?.sink === sink) this.loopbackSink = undefined
      })
    }
    return this.loopbackSink.address
  }

  private disconnect(): void {
    this.allowance = 0
    const socket = this.socket
    if (socket === undefined) return
    this.retire(socket)
    socket.destroy()
  }

  /** Counts what a connection sent once it is no longer the current one, whichever way it ended. */
  private retire(socket: Socket): void {
    if (this.socket !== socket) return
    this.sentByClosed += socket.bytesWritten
    this.socket = undefined
  }
}
