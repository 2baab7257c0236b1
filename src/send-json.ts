/** Writes a whole JSON answer: the balancer's refusals and its own endpoints both answer this way. */
import type { ServerResponse } from "node:http"

export const sendJson = (
  res: ServerResponse,
  status: number,
  body: unknown,
  /** Further headers as name/value pairs in one flat list. */
  headers: ReadonlyArray<string> = [],
): void => {
  const payload = JSON.stringify(body)
  res.writeHead(status, [
    "content-type",
    "application/json",
    "content-length",
    String(Buffer.byteLength(payload)),
    "cache-control",
    "no-store",
    ...headers,
  ])
  res.end(payload)
}
