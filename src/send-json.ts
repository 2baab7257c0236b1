/** Writes a whole JSON answer: the balancer's refusals and its own endpoints both answer this way. */
import type { ServerResponse } from "node:http"

export const sendJson = (res: ServerResponse, status: number, body: unknown): void => {
  const payload = JSON.stringify(body)
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(payload),
    "cache-control": "no-store",
  })
  res.end(payload)
}
