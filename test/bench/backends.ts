/** Child process: the three loopback backends every target ends at, each answering a 64-byte JSON body. */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

/** Distinct loopback hosts, as three replicas on three machines would be (Linux routes 127/8 to lo). */
const HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
const BODY_BYTES = 64

const bodyFor = (host: string): Buffer => {
  const start = `{"ok":true,"replica":"${host}","pad":"`
  const end = `"}`
  return Buffer.from(`${start}${"x".repeat(BODY_BYTES - start.length - end.length)}${end}`)
}

const listen = (host: string): Promise<string> => {
  const body = bodyFor(host)
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    // Answer only once the request body (if any) has been read, as a real service would.
    req.once("end", () => {
      res.writeHead(200, { "content-type": "application/json", "content-length": body.length })
      res.end(body)
    })
    req.resume()
  })
  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, host, () => resolve(`http://${host}:${(server.address() as AddressInfo).port}`))
  })
}

const origins = await Promise.all(HOSTS.map(listen))
process.send?.(origins)
