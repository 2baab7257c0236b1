// TLS on LB_PORT (TLS_CERT_FILE, TLS_KEY_FILE): HTTP/2 and HTTP/1.1 by ALPN, X-Forwarded-Proto, TLS 1.2
// at least, certificate reload, the HTTP-to-HTTPS redirect, the drain of HTTP/2 sessions, bad settings.
import { execFile } from "node:child_process"
import { createHash, X509Certificate } from "node:crypto"
import { mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises"
import {
  type ClientHttp2Session,
  constants as h2,
  connect as http2Connect,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type SecureClientSessionOptions,
} from "node:http2"
import { request as httpsRequest } from "node:https"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from "node:tls"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest"
import { type BalancerProcess, runBalancerToExit, spawnBalancer } from "../../src/process/balancer.ts"
import { makeSelfSigned } from "../../src/process/certificates.ts"
import { freePorts } from "../../src/process/ports.ts"
import { type Balancer, startBalancer } from "../support/balancer.ts"
import { ensureDebianPackage } from "../support/debian.ts"
import { json, type Reply, readReply, request } from "../support/http.ts"
import { patternStream } from "../support/pattern.ts"
import { type ReplicaSet, startReplicas } from "../support/replicas.ts"
import { waitFor, within } from "../support/wait.ts"

const run = promisify(execFile)

// ---------------------------------------------------------------------------------------------------
// Certificates, made by the real openssl CLI.

interface Pair {
  readonly certFile: string
  readonly keyFile: string
  readonly cert: Buffer
  /** As Node's getPeerCertificate().fingerprint256 gives it. */
  readonly fingerprint: string
}

/** Debian's openssl and curl (with nghttp2), installed by the first beforeAll when missing. */
const tools = { openssl: "openssl", curl: "curl" }

/** A self-signed certificate for localhost and 127.0.0.1, with common name `cn`, and its key. */
const makePair = async (dir: string, name: string, cn: string): Promise<Pair> => {
  const { certFile, keyFile } = await makeSelfSigned(dir, { name, commonName: cn, openssl: tools.openssl })
  const cert = await readFile(certFile)
  return { certFile, keyFile, cert, fingerprint: new X509Certificate(cert).fingerprint256 }
}

/** A P-256 private key of no certificate. */
const makeKey = async (file: string): Promise<void> => {
  await run(
    tools.openssl,
    ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", file],
    { timeout: 10_000 },
  )
}

const tempDir = () => mkdtemp(join(tmpdir(), "swarmguard-tls-"))

// ---------------------------------------------------------------------------------------------------
// Clients.

/** curl, built with nghttp2: `-w` appends the protocol version and status after the body. */
const curl = async (args: ReadonlyArray<string>) => {
  const { stdout } = await run(
    tools.curl,
    ["-sS", "--noproxy", "*", "--max-time", "10", "-w", "\n%{http_version} %{http_code}", ...args],
    { timeout: 15_000 },
  )
  const cut = stdout.lastIndexOf("\n")
  const [version, status] = stdout.slice(cut + 1).split(" ")
  return { version, status: Number(status), body: stdout.slice(0, cut) }
}

/** An HTTP/2 session to the balancer at 127.0.0.1, destroyed when the test ends. */
const openSession = async (
  port: number,
  options: SecureClientSessionOptions = {},
): Promise<ClientHttp2Session> => {
  const session = http2Connect(`https://127.0.0.1:${port}`, options)
  // An error ends the session's requests, which report it.
  session.on("error", () => {})
  onTestFinished(() => {
    session.destroy()
  })
  await within(
    "an HTTP/2 session to the balancer",
    5_000,
    new Promise((resolve, reject) => {
      session.once("connect", resolve)
      session.once("error", reject)
    }),
  )
  return session
}

interface H2Reply {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
}

/** One stream on `session`, read to its end. */
const h2Request = (
  session: ClientHttp2Session,
  path: string,
  options: { method?: string; headers?: OutgoingHttpHeaders; body?: Buffer; timeoutMs?: number } = {},
): Promise<H2Reply> =>
  new Promise((resolve, reject) => {
    const { method = "GET", headers = {}, body, timeoutMs = 15_000 } = options
    const stream = session.request(
      { ":method": method, ":path": path, ...headers },
      { endStream: body === undefined },
    )
    stream.setTimeout(timeoutMs, () => {
      stream.close(h2.NGHTTP2_CANCEL)
      reject(new Error(`no answer to ${method} ${path} within ${timeoutMs} ms`))
    })
    let head: IncomingHttpHeaders = {}
    const chunks: Array<Buffer> = []
    stream.on("response", (received) => {
      head = received
    })
    stream.on("data", (chunk: Buffer) => chunks.push(chunk))
    stream.on("end", () =>
      resolve({ status: Number(head[":status"] ?? 0), headers: head, body: Buffer.concat(chunks) }),
    )
    stream.on("error", reject)
    if (body !== undefined) stream.end(body)
  })

/** The first `bytes` bytes of the replicas' test pattern, in memory. */
const patternBytes = async (bytes: number): Promise<Buffer> => {
  const chunks: Array<Buffer> = []
  for await (const chunk of patternStream(bytes)) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex")

const bodyOf = <A = Record<string, unknown>>(reply: { readonly body: Buffer }): A =>
  JSON.parse(reply.body.toString("utf8")) as A

const replicaOf = (reply: H2Reply) => reply.headers["x-replica"] as string | undefined

interface Handshake {
  readonly protocol: string | null
  readonly alpn: string | false | null
  readonly cn: string | undefined
  readonly fingerprint: string
}

/** A TLS handshake with the balancer, and what it presented; the connection is closed at once. */
const handshake = (port: number, options: ConnectionOptions = {}): Promise<Handshake> =>
  new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, rejectUnauthorized: false, ...options })
    const timer = setTimeout(() => socket.destroy(new Error("no TLS handshake within 5000 ms")), 5_000)
    socket.once("close", () => clearTimeout(timer))
    socket.once("error", reject)
    socket.once("secureConnect", () => {
      const cert = socket.getPeerCertificate()
      resolve({
        protocol: socket.getProtocol(),
        alpn: socket.alpnProtocol ?? null,
        cn: cert.subject?.CN,
        fingerprint: cert.fingerprint256,
      })
      socket.destroy()
    })
  })

/** HTTP/1.1 over TLS, on a connection of its own; node:https offers no ALPN, as an old client. */
const httpsGet = (port: number, path: string, ca: Buffer): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const req = httpsRequest({
      host: "127.0.0.1",
      port,
      path,
      ca,
      agent: false,
      timeout: 15_000,
    })
    req.on("timeout", () => req.destroy(new Error(`no answer to GET ${path} within 15000 ms`)))
    req.on("error", reject)
    req.on("response", (res) => readReply(res).then(resolve, reject))
    req.end()
  })

interface Echo {
  readonly replica: string
  readonly method: string
  readonly url: string
  readonly headers: Record<string, string | undefined>
  readonly raw_headers: ReadonlyArray<string>
}

/** The names in a raw header list (name, value, name, value, ...), lower-cased. */
const headerNames = (raw: ReadonlyArray<string>) =>
  raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase())

// ---------------------------------------------------------------------------------------------------
// Logs and exits of the child-process balancer.

const linesWith = (stdout: string, message: string) =>
  stdout.split("\n").filter((line) => line.includes(`message="${message}"`))

const untilLogged = (lb: BalancerProcess, message: string, timeoutMs: number) =>
  waitFor(
    `the balancer to log "${message}"`,
    () => (linesWith(lb.stdout(), message).length > 0 ? true : undefined),
    { timeoutMs, intervalMs: 20 },
  )

const RELOADED = "TLS certificate reloaded"
const UNUSABLE = "the TLS files changed but cannot be used: the certificate in force stays"

/** The one stderr line of a program that refused to start. */
const oneStderrLine = (exit: { code: number | null; stderr: string; stdout: string }) => {
  expect(exit.code, exit.stderr).toBe(1)
  const lines = exit.stderr.split("\n").filter((line) => line !== "")
  expect(lines, exit.stderr).toHaveLength(1)
  expect(exit.stdout).not.toContain("load balancer listening")
  return lines[0]!
}

// ---------------------------------------------------------------------------------------------------

describe("TLS on the balancer's port", () => {
  let dir: string
  let pair: Pair
  let set: ReplicaSet

  beforeAll(async () => {
    tools.openssl = await ensureDebianPackage("openssl", "openssl")
    tools.curl = await ensureDebianPackage("curl", "curl")
    dir = await tempDir()
    pair = await makePair(dir, "main", "localhost")
    set = await startReplicas(3)
  })
  afterAll(async () => {
    await set?.stopAll()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  describe("in process", () => {
    let lb: Balancer
    let redirectPort: number
    let ca: Buffer

    beforeAll(async () => {
      ca = pair.cert
      ;[redirectPort] = (await freePorts("127.0.0.1", 1)) as [number]
      lb = await startBalancer({
        REPLICAS: set.origins,
        LB_ALGORITHM: "round-robin",
        TLS_CERT_FILE: pair.certFile,
        TLS_KEY_FILE: pair.keyFile,
        HTTP_REDIRECT_PORT: String(redirectPort),
      })
    })
    afterAll(() => lb?.close())

    it("curl gets HTTP/2 by ALPN and HTTP/1.1 on the same port, both proxied", async () => {
      const url = `https://127.0.0.1:${lb.port}/whoami`
      const viaH2 = await curl(["--http2", "--cacert", pair.certFile, url])
      const viaH1 = await curl(["--http1.1", "--cacert", pair.certFile, url])
      // -k too: a client that does not check the certificate gets the same.
      const insecure = await curl(["--http2", "-k", url])
      console.log(
        `curl: --http2 ${viaH2.version} ${viaH2.status}, --http1.1 ${viaH1.version} ${viaH1.status}, -k ${insecure.version} ${insecure.status}`,
      )
      expect({ version: viaH2.version, status: viaH2.status }).toEqual({ version: "2", status: 200 })
      expect({ version: viaH1.version, status: viaH1.status }).toEqual({ version: "1.1", status: 200 })
      expect({ version: insecure.version, status: insecure.status }).toEqual({ version: "2", status: 200 })
      for (const reply of [viaH2, viaH1, insecure]) {
        expect(JSON.parse(reply.body)).toMatchObject({ replica: expect.stringMatching(/^replica-\d$/) })
      }
      // Plain HTTP on the TLS port is not served.
      await expect(request(`http://127.0.0.1:${lb.port}/whoami`, { timeoutMs: 5_000 })).rejects.toThrow()
    })

    it("balances the streams of one HTTP/2 connection per request: round-robin shares stay one session", async () => {
      const session = await openSession(lb.port, { ca })
      let connects = 0
      session.on("connect", () => connects++)
      const localPort = session.socket.localPort
      const counts: Record<string, number> = {}
      for (let i = 0; i < 300; i++) {
        const reply = await h2Request(session, `/whoami?i=${i}`)
        expect(reply.status).toBe(200)
        const replica = replicaOf(reply) ?? "none"
        counts[replica] = (counts[replica] ?? 0) + 1
      }
      const shares = Object.fromEntries(
        Object.entries(counts).map(([name, count]) => [name, Math.round((count / 300) * 1_000) / 10]),
      )
      console.log(
        `HTTP/2 round-robin over one session, 300 streams: counts ${JSON.stringify(counts)}, % ${JSON.stringify(shares)}`,
      )
      expect(Object.keys(counts).sort()).toEqual(set.replicas.map((replica) => replica.name).sort())
      for (const share of Object.values(shares)) {
        expect(share).toBeGreaterThanOrEqual(100 / 3 - 3)
        expect(share).toBeLessThanOrEqual(100 / 3 + 3)
      }
      // One connection throughout: never closed, never reconnected, the same client port.
      expect(session.closed || session.destroyed).toBe(false)
      expect(connects).toBe(0)
      expect(session.socket.localPort).toBe(localPort)
      expect(session.alpnProtocol).toBe("h2")
    })

    it("carries 60 parallel streams on one connection, all answered 200", async () => {
      const session = await openSession(lb.port, { ca })
      const startedAt = Date.now()
      const replies = await Promise.all(
        Array.from({ length: 60 }, (_, i) => h2Request(session, `/slow?ms=500&i=${i}`)),
      )
      const elapsedMs = Date.now() - startedAt
      const counts: Record<string, number> = {}
      for (const reply of replies) {
        expect(reply.status).toBe(200)
        expect(JSON.parse(reply.body.toString("utf8"))).toMatchObject({ slept_ms: 500 })
        const replica = replicaOf(reply) ?? "none"
        counts[replica] = (counts[replica] ?? 0) + 1
      }
      const peaks = set.replicas.map((replica) => replica.peakInFlight())
      console.log(
        `60 parallel streams of 500 ms: ${elapsedMs} ms in all, by replica ${JSON.stringify(counts)}, replicas' peak in flight ${JSON.stringify(peaks)}`,
      )
      // One at a time would take 30 s: a third of that shows they did not wait for each other.
      expect(elapsedMs).toBeLessThan(10_000)
      expect(Object.keys(counts)).toHaveLength(3)
      expect(session.closed || session.destroyed).toBe(false)
    })

    it("tells the replica X-Forwarded-Proto: https and the :authority as Host and X-Forwarded-Host", async () => {
      // The replicas echo every request they get on paths they have no other use for (/echo here).
      const session = await openSession(lb.port, { ca })
      const plain = await h2Request(session, "/echo?x=1")
      expect(plain.status).toBe(200)
      const echo = bodyOf<Echo>(plain)
      expect(echo.url).toBe("/echo?x=1")
      expect(echo.method).toBe("GET")
      expect(echo.headers["x-forwarded-proto"]).toBe("https")
      expect(echo.headers.host).toBe(`127.0.0.1:${lb.port}`)
      expect(echo.headers["x-forwarded-host"]).toBe(`127.0.0.1:${lb.port}`)
      expect(echo.headers["x-forwarded-for"]).toBe("127.0.0.1")
      // HTTP/2's pseudo-headers stay on the client's hop, and Host is sent once.
      const names = headerNames(echo.raw_headers)
      expect(names.filter((name) => name.startsWith(":"))).toEqual([])
      expect(names.filter((name) => name === "host")).toHaveLength(1)

      const named = bodyOf<Echo>(
        await h2Request(session, "/echo", { headers: { ":authority": "shop.example:8443" } }),
      )
      expect(named.headers.host).toBe("shop.example:8443")
      expect(named.headers["x-forwarded-host"]).toBe("shop.example:8443")
      expect(named.headers["x-forwarded-proto"]).toBe("https")

      // A POST body with its length and the replica's answer both cross the HTTP/2 hop whole.
      const body = await patternBytes(1024 * 1024)
      const upload = await h2Request(session, "/upload", {
        method: "POST",
        headers: { "content-type": "application/octet-stream", "content-length": body.length },
        body,
      })
      expect(upload.status).toBe(200)
      expect(bodyOf(upload)).toMatchObject({ bytes: body.length, sha256: sha256(body) })
      // Connection-scoped response headers are dropped: HTTP/2 forbids them (Node would throw).
      const hop = await h2Request(session, "/hop-by-hop")
      expect(hop.status).toBe(200)
      expect(hop.headers["x-end-to-end"]).toBe("kept")
      expect(hop.headers["keep-alive"]).toBeUndefined()

      // HTTP/1.1 over TLS says https too.
      const viaH1 = json<Echo>(await httpsGet(lb.port, "/echo", ca))
      expect(viaH1.headers["x-forwarded-proto"]).toBe("https")
      expect(viaH1.headers.host).toBe(`127.0.0.1:${lb.port}`)
      expect(viaH1.headers["x-forwarded-host"]).toBe(`127.0.0.1:${lb.port}`)
    })

    it("forwards an HTTP/2 request body sent without Content-Length (its end is the stream's end)", async () => {
      // HTTP/2 has no chunked encoding: a client streaming a body of unknown length (fetch with a
      // ReadableStream, gRPC-web, curl -T -) sends DATA frames and END_STREAM, and no Content-Length.
      const session = await openSession(lb.port, { ca })
      const body = await patternBytes(64 * 1024)
      const upload = await h2Request(session, "/upload", {
        method: "POST",
        headers: { "content-type": "application/octet-stream" },
        body,
      })
      console.log(`HTTP/2 POST of ${body.length} bytes without Content-Length: replica got ${upload.body}`)
      expect(upload.status).toBe(200)
      expect.soft(bodyOf(upload)).toMatchObject({ bytes: body.length, sha256: sha256(body) })
      // An idempotent PUT the same way (the balancer would also count it retryable, as bodiless).
      const put = await h2Request(session, "/upload", { method: "PUT", body: Buffer.from("hello") })
      expect(bodyOf(put)).toMatchObject({ bytes: 5 })
    })

    it("forwards an HTTP/2 request carrying both :authority and the same Host once, with one Host", async () => {
      // RFC 9113, 8.3.1: a Host equal to :authority is allowed (some clients and intermediaries send both).
      const session = await openSession(lb.port, { ca })
      const authority = `127.0.0.1:${lb.port}`
      const reply = await h2Request(session, "/echo", {
        headers: { ":authority": authority, host: authority },
      })
      console.log(`HTTP/2 request with :authority and Host: ${reply.status} ${reply.body}`)
      expect(reply.status).toBe(200)
      const echo = bodyOf<Echo>(reply)
      expect(headerNames(echo.raw_headers).filter((name) => name === "host")).toHaveLength(1)
      expect(echo.headers.host).toBe(authority)
    })

    it("refuses TLS 1.1 and accepts TLS 1.2 and 1.3, offering h2 and http/1.1 by ALPN", async () => {
      // The client is made willing to speak TLS 1.1 (OpenSSL 3 forbids it at its default level), so a
      // failure is the balancer's refusal.
      const old = await handshake(lb.port, {
        minVersion: "TLSv1.1",
        maxVersion: "TLSv1.1",
        ciphers: "DEFAULT@SECLEVEL=0",
      }).then(
        (done) => ({ ok: true as const, done }),
        (error: NodeJS.ErrnoException) => ({ ok: false as const, code: error.code, message: error.message }),
      )
      console.log(`TLS 1.1 handshake: ${JSON.stringify(old)}`)
      expect(old.ok).toBe(false)
      if (!old.ok) expect(`${old.code} ${old.message}`).toMatch(/protocol version|unsupported protocol/i)

      const v12 = await handshake(lb.port, { ca, maxVersion: "TLSv1.2", ALPNProtocols: ["h2", "http/1.1"] })
      const v13 = await handshake(lb.port, { ca, minVersion: "TLSv1.3", ALPNProtocols: ["http/1.1"] })
      console.log(`TLS 1.2: ${JSON.stringify(v12)}; TLS 1.3: ${JSON.stringify(v13)}`)
      expect(v12).toMatchObject({ protocol: "TLSv1.2", alpn: "h2", fingerprint: pair.fingerprint })
      expect(v13).toMatchObject({ protocol: "TLSv1.3", alpn: "http/1.1", fingerprint: pair.fingerprint })
    })

    it("HTTP_REDIRECT_PORT answers plain HTTP with 308 to https://host:LB_PORT/path?query", async () => {
      const at = `http://127.0.0.1:${redirectPort}`
      const get = await request(`${at}/a/b?c=1`)
      expect(get.status).toBe(308)
      expect(get.headers.location).toBe(`https://127.0.0.1:${lb.port}/a/b?c=1`)

      const post = await request(`${at}/a/b?c=1`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", "content-length": 3 },
        body: Buffer.from("x=1"),
      })
      expect(post.status).toBe(308)
      expect(post.headers.location).toBe(`https://127.0.0.1:${lb.port}/a/b?c=1`)

      // The client's host name, its port replaced by the balancer's.
      const named = await request(`${at}/a/b?c=1`, { headers: { host: "Shop.Example:8080" } })
      expect(named.status).toBe(308)
      expect(named.headers.location).toBe(`https://shop.example:${lb.port}/a/b?c=1`)

      // Followed by a real client, the POST is repeated over HTTPS with its body.
      const followed = await curl(["-L", "--cacert", pair.certFile, "-d", "x=1", `${at}/form?c=1`])
      expect(followed.status).toBe(200)
      const echo = JSON.parse(followed.body) as Echo
      expect(echo).toMatchObject({ method: "POST", url: "/form?c=1" })
      expect(echo.headers["x-forwarded-proto"]).toBe("https")
      expect(echo.headers["content-length"]).toBe("3")
    })

    it("HTTP_REDIRECT_PORT keeps an IPv6 literal host in one pair of brackets", async () => {
      const reply = await request(`http://127.0.0.1:${redirectPort}/a/b?c=1`, {
        headers: { host: `[::1]:${redirectPort}` },
      })
      expect(reply.status).toBe(308)
      expect(reply.headers.location).toBe(`https://[::1]:${lb.port}/a/b?c=1`)
    })
  })

  describe("as a child process", () => {
    it("reloads a renewed certificate for new connections; open sessions keep working; a broken pair is refused", async () => {
      const live = await tempDir()
      onTestFinished(() => rm(live, { recursive: true, force: true }))
      const first = await makePair(live, "first", "lb-one")
      const certFile = join(live, "cert.pem")
      const keyFile = join(live, "key.pem")
      await rename(first.certFile, certFile)
      await rename(first.keyFile, keyFile)

      const lb = await spawnBalancer({
        REPLICAS: set.origins,
        LB_ALGORITHM: "round-robin",
        TLS_CERT_FILE: certFile,
        TLS_KEY_FILE: keyFile,
      })
      onTestFinished(() => lb.close())
      expect(linesWith(lb.stdout(), "load balancer listening")[0]).toContain("scheme=https")

      const old = await openSession(lb.port, { rejectUnauthorized: false })
      expect((await h2Request(old, "/whoami")).status).toBe(200)
      expect((await handshake(lb.port)).cn).toBe("lb-one")

      // A renewal as a secret store does it: the new files written aside, then renamed over the old.
      const second = await makePair(live, "second", "lb-two")
      const renewedAt = Date.now()
      await rename(second.keyFile, keyFile)
      await rename(second.certFile, certFile)
      const presented = await waitFor(
        "a new connection to present the renewed certificate",
        async () => {
          const seen = await handshake(lb.port)
          return seen.cn === "lb-two" ? seen : undefined
        },
        { timeoutMs: 10_000, intervalMs: 100 },
      )
      console.log(`renewed certificate presented ${Date.now() - renewedAt} ms after the rename`)
      expect(presented.fingerprint).toBe(second.fingerprint)

      // The session opened before keeps its certificate and keeps working.
      expect((old.socket as TLSSocket).getPeerCertificate().subject.CN).toBe("lb-one")
      expect((await h2Request(old, "/whoami")).status).toBe(200)
      // A new session gets the renewed certificate, and is served.
      const fresh = await openSession(lb.port, { ca: second.cert })
      expect((await h2Request(fresh, "/whoami")).status).toBe(200)

      // Both files changed, but one reload: wait past another poll of each file before counting.
      await sleep(2_500)
      const reloads = linesWith(lb.stdout(), RELOADED)
      console.log(`reload log: ${reloads.join("\n")}`)
      expect(reloads).toHaveLength(1)
      expect(reloads[0]).toContain("CN=lb-two")
      expect(reloads[0]).toContain(second.fingerprint)

      // A key that is not the certificate's: a warning, and the renewed certificate stays in force.
      const stray = join(live, "stray.key.pem")
      await makeKey(stray)
      await rename(stray, keyFile)
      await untilLogged(lb, UNUSABLE, 10_000)
      const warning = linesWith(lb.stdout(), UNUSABLE)[0]!
      console.log(`broken pair log: ${warning}`)
      expect(warning).toMatch(/level=WARN/)
      expect(warning).toContain("TLS_KEY_FILE")
      expect(await handshake(lb.port)).toMatchObject({ cn: "lb-two", fingerprint: second.fingerprint })
      const after = await openSession(lb.port, { ca: second.cert })
      expect((await h2Request(after, "/whoami")).status).toBe(200)
      expect((await h2Request(old, "/whoami")).status).toBe(200)
      expect(linesWith(lb.stdout(), RELOADED)).toHaveLength(1)
      expect(lb.process.exitCode).toBeNull()
    })

    it("SIGTERM sends HTTP/2 sessions a GOAWAY, lets their streams finish, and exits 0", async () => {
      const lb = await spawnBalancer({
        REPLICAS: set.origins,
        TLS_CERT_FILE: pair.certFile,
        TLS_KEY_FILE: pair.keyFile,
        DRAIN_TIMEOUT: "10",
      })
      onTestFinished(() => lb.close())
      const session = await openSession(lb.port, { ca: pair.cert })
      let goawayAt: number | undefined
      const goaway = new Promise<{ code: number; lastStreamId: number }>((resolve) =>
        session.once("goaway", (code, lastStreamId) => {
          goawayAt = Date.now()
          resolve({ code, lastStreamId })
        }),
      )
      const slowHits = () => set.replicas.reduce((sum, replica) => sum + replica.hits("/slow"), 0)
      const before = slowHits()
      const doneAt: Array<number> = []
      const streams = Array.from({ length: 3 }, (_, i) =>
        h2Request(session, `/slow?ms=3000&i=${i}`, { timeoutMs: 20_000 }).then((reply) => {
          doneAt.push(Date.now())
          return reply
        }),
      )
      for (const stream of streams) stream.catch(() => {})
      await waitFor("the 3 slow streams to reach the replicas", () =>
        slowHits() - before === 3 ? true : undefined,
      )

      lb.signal("SIGTERM")
      const received = await within("the GOAWAY", 5_000, goaway)
      expect(received.code).toBe(h2.NGHTTP2_NO_ERROR)
      // The listener is closed: a new connection is refused while the streams run on.
      await untilLogged(lb, "draining connections", 5_000)
      await expect(handshake(lb.port)).rejects.toMatchObject({ code: "ECONNREFUSED" })

      const replies = await within("the 3 streams to finish", 15_000, Promise.all(streams))
      for (const reply of replies) {
        expect(reply.status).toBe(200)
        expect(JSON.parse(reply.body.toString("utf8"))).toMatchObject({ slept_ms: 3000 })
      }
      // The GOAWAY came while they were in flight.
      expect(goawayAt).toBeLessThan(Math.min(...doneAt))

      const exit = await within("the balancer to exit after its drain", 15_000, lb.exited)
      const drained = linesWith(exit.stdout, "drain finished")[0]
      console.log(
        `drain: GOAWAY ${JSON.stringify(received)}, streams done ${Math.min(...doneAt) - goawayAt!}..${Math.max(...doneAt) - goawayAt!} ms after it; exit ${exit.code}; ${drained}`,
      )
      expect(exit.code).toBe(0)
      expect(drained).toContain("cut=0")
      expect(drained).toContain("deadline_reached=false")
    })
  })

  describe("bad settings stop the program: one stderr line naming the variable, exit 1", () => {
    let bad: string
    let other: Pair
    beforeAll(async () => {
      bad = await tempDir()
      other = await makePair(bad, "other", "other")
      await writeFile(join(bad, "garbage.pem"), "this is not a certificate\n")
      await run(
        tools.openssl,
        ["x509", "-in", other.certFile, "-outform", "DER", "-out", join(bad, "cert.der")],
        {
          timeout: 10_000,
        },
      )
    })
    afterAll(async () => {
      if (bad !== undefined) await rm(bad, { recursive: true, force: true })
    })

    const REPLICAS = "http://127.0.0.2:9"

    it.concurrent.each([
      ["only TLS_CERT_FILE set", () => ({ TLS_CERT_FILE: pair.certFile }), "TLS_KEY_FILE", /TLS_KEY_FILE=""/],
      ["only TLS_KEY_FILE set", () => ({ TLS_KEY_FILE: pair.keyFile }), "TLS_CERT_FILE", /TLS_CERT_FILE=""/],
      [
        "TLS_CERT_FILE naming a missing file",
        () => ({ TLS_CERT_FILE: join(bad, "missing.pem"), TLS_KEY_FILE: pair.keyFile }),
        "TLS_CERT_FILE",
        /missing\.pem.*ENOENT/,
      ],
      [
        "a certificate file that is not PEM",
        () => ({ TLS_CERT_FILE: join(bad, "garbage.pem"), TLS_KEY_FILE: pair.keyFile }),
        "TLS_CERT_FILE",
        /garbage\.pem.*PEM certificate/,
      ],
      [
        "a key that is not the certificate's",
        () => ({ TLS_CERT_FILE: pair.certFile, TLS_KEY_FILE: other.keyFile }),
        "TLS_KEY_FILE",
        /other\.key\.pem/,
      ],
      [
        "HTTP_REDIRECT_PORT without TLS",
        () => ({ HTTP_REDIRECT_PORT: "8080" }),
        "HTTP_REDIRECT_PORT",
        /"8080"/,
      ],
    ])("%s", async (_, env, variable, detail) => {
      const exit = await runBalancerToExit({ REPLICAS, ...env() })
      const line = oneStderrLine(exit)
      expect(line).toContain(`invalid configuration: ${variable}=`)
      expect(line).toMatch(detail)
    })

    it("a DER (not PEM) certificate is blamed on TLS_CERT_FILE", async () => {
      const exit = await runBalancerToExit({
        REPLICAS,
        TLS_CERT_FILE: join(bad, "cert.der"),
        TLS_KEY_FILE: other.keyFile,
      })
      const line = oneStderrLine(exit)
      expect(line).toContain("invalid configuration: TLS_CERT_FILE=")
    })
  })
})
