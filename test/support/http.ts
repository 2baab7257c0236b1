/**
 * A small node:http client for the tests. Not fetch: fetch forbids the hop-by-hop request headers the
 * tests must send, and its pooled connections would outlive the balancer under test.
 */
import { createHash } from "node:crypto"
import {
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
} from "node:http"
import type { Readable } from "node:stream"
import { patternStream } from "./pattern.ts"

export interface Reply {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
}

export interface RequestOptions {
  readonly method?: string
  readonly headers?: OutgoingHttpHeaders
  readonly body?: Buffer | Readable
  readonly timeoutMs?: number
  /** The loopback address the request leaves from (127.0.0.x), as a distinct client. */
  readonly localAddress?: string
}

/** A response read to its end. */
export const readReply = (res: IncomingMessage): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    res.on("data", (chunk: Buffer) => chunks.push(chunk))
    res.on("error", reject)
    res.on("end", () =>
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
    )
  })

/** One request on its own connection (no agent), so nothing stays open after the test. */
export const request = (url: string, options: RequestOptions = {}): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      method: options.method ?? "GET",
      headers: options.headers ?? {},
      agent: false,
      timeout: options.timeoutMs ?? 15_000,
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
    })
    req.on("timeout", () =>
      req.destroy(new Error(`no answer from ${url} within ${options.timeoutMs ?? 15_000} ms`)),
    )
    req.on("error", reject)
    req.on("response", (res) => readReply(res).then(resolve, reject))
    const body = options.body
    if (body === undefined) req.end()
    else if (Buffer.isBuffer(body)) req.end(body)
    else body.on("error", (error) => req.destroy(error)).pipe(req)
  })

export const json = <A = Record<string, unknown>>(reply: Reply): A =>
  JSON.parse(reply.body.toString("utf8")) as A

export const getJson = async <A = Record<string, unknown>>(url: string): Promise<A> => {
  const reply = await request(url)
  if (reply.status !== 200)
    throw new Error(`GET ${url} answered ${reply.status}: ${reply.body.toString("utf8")}`)
  return json<A>(reply)
}

/** Streams the first `bytes` bytes of the test pattern as a POST body. */
export const uploadPattern = (url: string, bytes: number, timeoutMs = 60_000): Promise<Reply> =>
  request(url, {
    method: "POST",
    headers: { "content-type": "application/octet-stream", "content-length": bytes },
    body: patternStream(bytes),
    timeoutMs,
  })

export interface Download {
  readonly status: number
  readonly replica: string | undefined
  readonly bytes: number
  readonly sha256: string
}

/** GETs `url` and hashes the body as it streams in, so a large download is never held in memory. */
export const downloadSha256 = (url: string, timeoutMs = 60_000): Promise<Download> =>
  new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, timeout: timeoutMs })
    req.on("timeout", () => req.destroy(new Error(`download from ${url} took over ${timeoutMs} ms`)))
    req.on("error", reject)
    req.on("response", (res) => {
      const hash = createHash("sha256")
      let bytes = 0
      res.on("data", (chunk: Buffer) => {
        bytes += chunk.length
        hash.update(chunk)
      })
      res.on("error", reject)
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          replica: res.headers["x-replica"] as string | undefined,
          bytes,
          sha256: hash.digest("hex"),
        }),
      )
    })
    req.end()
  })

export interface Held {
  /** Settles when the response headers reach the client. */
  readonly response: Promise<{ readonly status: number; readonly replica: string | undefined }>
  /** Settles with the first body chunk; the response is then paused, like a client that stopped reading. */
  readonly firstChunk: Promise<void>
  /** Destroys the client's socket, as a client that gives up would. */
  readonly abort: () => void
}

/** GETs `url` and keeps the exchange open until `abort`; the promises reject if it fails first. */
export const hold = (url: string, timeoutMs = 15_000): Held => {
  const req = httpRequest(url, { agent: false, timeout: timeoutMs })
  let aborted = false
  const abort = () => {
    aborted = true
    req.destroy()
  }
  // Errors after `abort` are the point of aborting; before it they fail whoever awaits.
  const failed = new Promise<never>((_, reject) => {
    req.on("timeout", () => req.destroy(new Error(`no response from ${url} within ${timeoutMs} ms`)))
    req.on("error", (error) => {
      if (!aborted) reject(error)
    })
  })
  const response = Promise.race([
    failed,
    new Promise<IncomingMessage>((resolve) => req.on("response", resolve)),
  ])
  const firstChunk = response.then((res) => {
    req.setTimeout(0)
    return Promise.race([failed, new Promise<void>((resolve) => res.once("data", () => resolve()))]).then(
      () => {
        res.pause()
      },
    )
  })
  // Callers await only what they need; the rest must not surface as unhandled rejections.
  for (const promise of [failed, response, firstChunk]) promise.catch(() => {})
  req.end()
  return {
    response: response.then((res) => ({
      status: res.statusCode ?? 0,
      replica: res.headers["x-replica"] as string | undefined,
    })),
    firstChunk,
    abort,
  }
}
