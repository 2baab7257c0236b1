/** A one-off GET for probing and measuring children: never throws, never keeps a connection. */
import { request } from "node:http"
import { request as httpsRequest } from "node:https"

/** The status and body of `url`; undefined when nothing answers within a second. */
export const get = (url: string): Promise<{ status: number; body: string } | undefined> =>
  new Promise((resolve) => {
    // No agent: the request must not leave a keep-alive connection behind.
    // Our own processes: an https one has a certificate made for the occasion, not one to verify.
    const send = url.startsWith("https:") ? httpsRequest : request
    const req = send(url, { agent: false, timeout: 1_000, rejectUnauthorized: false }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (chunk: Buffer) => chunks.push(chunk))
      res.once("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
      )
    })
    req.once("timeout", () => req.destroy())
    req.once("error", () => resolve(undefined))
    req.end()
  })
