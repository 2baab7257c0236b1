/**
 * `HTTP_REDIRECT_PORT`: a plain HTTP server that sends every request to the same host and path over
 * HTTPS, with 308 so a method and its body are repeated as they were.
 */
import { createServer, type Server } from "node:http"
import { normalizeHost } from "../../src/routes/rule-match.ts"

export const createRedirectServer = (httpsPort: number): Server =>
  createServer((req, res) => {
    const name = normalizeHost(req.headers.host)
    if (name === "") {
      res
        .writeHead(400, { "content-type": "text/plain" })
        .end("a Host header is needed to redirect to HTTPS\n")
      return
    }
    // An IPv6 literal keeps its brackets from the Host header.
    const host = name.includes(":") && !name.startsWith("[") ? `[${name}]` : name
    const authority = httpsPort === 443 ? host : `${host}:${httpsPort}`
    res.writeHead(308, { location: `https://${authority}${req.url ?? "/"}`, "content-length": 0 }).end()
  })
