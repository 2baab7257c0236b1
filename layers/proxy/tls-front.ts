/**
 * TLS on the balancer's port (`TLS_CERT_FILE`, `TLS_KEY_FILE`). One TLS server negotiates ALPN and
 * hands each connection to the server for its protocol: `h2` to an HTTP/2 server, whose streams are
 * requests like any other (each balanced on its own, so one client connection reaches every
 * replica), and `http/1.1` to the very node:http server that serves plain HTTP, with its timeouts,
 * upgrades and drain unchanged. The files are watched: a new certificate applies to new
 * connections, and the open ones keep theirs.
 */
import { X509Certificate } from "node:crypto"
import { readFileSync, unwatchFile, watchFile } from "node:fs"
import type { Server as HttpServer, IncomingMessage, ServerResponse } from "node:http"
import {
  createServer as createHttp2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Session,
} from "node:http2"
import { createSecureContext, createServer as createTlsServer, type Server as TlsServer } from "node:tls"
import { Effect, FiberSet } from "effect"
import { ConfigInvalid } from "../../src/domain/ConfigInvalid.ts"
import type { Listener } from "./drain.ts"

export interface TlsFiles {
  readonly certFile: string
  readonly keyFile: string
}

/** NGINX's and Envoy's default: enough for a browser's parallel requests, bounded per connection. */
const MAX_CONCURRENT_STREAMS = 128
/** How often the files are checked for a new certificate (a Docker secret is replaced, not edited). */
const WATCH_INTERVAL_MS = 1_000
const SETTLE_MS = 200

interface KeyPair {
  readonly cert: Buffer
  readonly key: Buffer
}

/** Why `cert` is not a PEM certificate; undefined when it is. */
const pemCertificateProblem = (cert: Buffer): string | undefined => {
  // X509Certificate reads DER too, which the TLS context does not: ask for PEM by its armour.
  if (!cert.toString("latin1").includes("-----BEGIN CERTIFICATE-----")) return "no BEGIN CERTIFICATE line"
  try {
    new X509Certificate(cert)
    return undefined
  } catch (error) {
    return (error as Error).message
  }
}

/** Reads the pair and checks that the key is the certificate's; the reason in one line otherwise. */
const readPair = ({ certFile, keyFile }: TlsFiles): KeyPair | ConfigInvalid => {
  const read = (variable: string, file: string) => {
    try {
      return readFileSync(file)
    } catch (error) {
      return new ConfigInvalid({
        variable,
        value: file,
        expected: `a readable PEM file (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      })
    }
  }
  const cert = read("TLS_CERT_FILE", certFile)
  if (cert instanceof ConfigInvalid) return cert
  const key = read("TLS_KEY_FILE", keyFile)
  if (key instanceof ConfigInvalid) return key
  const certificateProblem = pemCertificateProblem(cert)
  if (certificateProblem !== undefined) {
    return new ConfigInvalid({
      variable: "TLS_CERT_FILE",
      value: certFile,
      expected: `a PEM certificate (${certificateProblem})`,
    })
  }
  try {
    createSecureContext({ cert, key })
  } catch (error) {
    return new ConfigInvalid({
      variable: "TLS_KEY_FILE",
      value: keyFile,
      expected: `the PEM private key of TLS_CERT_FILE's certificate (${(error as Error).message})`,
    })
  }
  return { cert, key }
}

const describeCertificate = (cert: Buffer) => {
  const x509 = new X509Certificate(cert)
  return { subject: x509.subject.replaceAll("\n", ", "), valid_to: x509.validTo, sha256: x509.fingerprint256 }
}

export interface TlsFrontOptions {
  readonly files: TlsFiles
  /** The plain HTTP/1.1 server, which takes the connections that chose http/1.1. */
  readonly http1: HttpServer
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void
  /** Bounds the TLS handshake as CLIENT_HEADER_TIMEOUT bounds a request's head. */
  readonly handshakeTimeoutMs: number
}

/** The TLS server to listen with, and the listener its drain works on. */
export const makeTlsFront = ({ files, http1, handle, handshakeTimeoutMs }: TlsFrontOptions) =>
  Effect.gen(function* () {
    const pair = readPair(files)
    if (pair instanceof ConfigInvalid) return yield* pair

    const http2 = createHttp2Server(
      { settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS } },
      (req, res) =>
        // The compatibility API's request and response stand in for node:http's.
        handle(
          req as Http2ServerRequest as unknown as IncomingMessage,
          res as Http2ServerResponse as unknown as ServerResponse,
        ),
    )
    const sessions = new Set<ServerHttp2Session>()
    http2.on("session", (session: ServerHttp2Session) => {
      sessions.add(session)
      session.once("close", () => sessions.delete(session))
    })
    // node:http tracks its connections (for its timeouts and closeIdleConnections) from 'listening'
    // on; this one never listens itself.
    http1.emit("listening")

    const tls: TlsServer = createTlsServer(
      {
        ...pair,
        minVersion: "TLSv1.2",
        ALPNProtocols: ["h2", "http/1.1"],
        handshakeTimeout: handshakeTimeoutMs,
      },
      (socket) => {
        if (socket.alpnProtocol === "h2") http2.emit("connection", socket)
        else http1.emit("connection", socket)
      },
    )
    // A failed handshake costs only its own connection.
    tls.on("tlsClientError", (_error, socket) => socket.destroy())

    // The files change outside any fiber: the reload logs through this scope's runtime.
    const run = yield* FiberSet.makeRuntime<never>()
    let inForce = pair
    const reload = () => {
      const next = readPair(files)
      if (next instanceof ConfigInvalid) {
        run(
          Effect.logWarning("the TLS files changed but cannot be used: the certificate in force stays").pipe(
            Effect.annotateLogs({ reason: next.message }),
          ),
        )
        return
      }
      // Both watchers fire for one renewal, and a touch changes no bytes.
      if (next.cert.equals(inForce.cert) && next.key.equals(inForce.key)) return
      tls.setSecureContext({ ...next })
      inForce = next
      run(
        Effect.logInfo("TLS certificate reloaded").pipe(Effect.annotateLogs(describeCertificate(next.cert))),
      )
    }
    // A renewal replaces both files, one after the other: read them once both have settled.
    let settling: NodeJS.Timeout | undefined
    const changed = () => {
      clearTimeout(settling)
      settling = setTimeout(reload, SETTLE_MS)
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        for (const file of [files.certFile, files.keyFile])
          watchFile(file, { interval: WATCH_INTERVAL_MS }, changed)
      }),
      () =>
        Effect.sync(() => {
          for (const file of [files.certFile, files.keyFile]) unwatchFile(file, changed)
        }),
    )
    yield* Effect.logInfo("TLS on").pipe(Effect.annotateLogs(describeCertificate(pair.cert)))

    const listener: Listener = {
      close: (callback) => {
        tls.close(() => callback())
        http1.close()
        // GOAWAY: each HTTP/2 connection finishes its open streams, takes no new ones, then closes.
        for (const session of sessions) session.close()
      },
      closeIdleConnections: () => http1.closeIdleConnections(),
      closeAllConnections: () => {
        http1.closeAllConnections()
        for (const session of sessions) session.destroy()
      },
    }
    return { server: tls, listener }
  })
