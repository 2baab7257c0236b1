/**
 * Header rewriting between client and replica. Hop-by-hop headers (RFC 9110 §7.6.1) describe one
 * connection and are dropped; `X-Forwarded-*` tell the replica who the client was.
 */
import { LOAD_REPORT_HEADER } from "../../src/domain/LoadReport.ts"

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  // Node's server answers `Expect: 100-continue` itself; undici refuses to send it on.
  "expect",
])

const COLON = ":".charCodeAt(0)

/**
 * Extra names listed in `Connection` are hop-by-hop too. Usually it lists only `keep-alive` or
 * `close`, which name nothing to drop: that common case returns undefined without allocating.
 */
const connectionListed = (value: string): Set<string> | undefined => {
  let listed: Set<string> | undefined
  for (const token of value.split(",")) {
    const name = token.trim().toLowerCase()
    if (name === "keep-alive" || name === "close" || HOP_BY_HOP.has(name)) continue
    listed ??= new Set()
    listed.add(name)
  }
  return listed
}

export interface ForwardedRequestHeaders {
  /** Flat `[name, value, name, value, ...]`, as undici takes them. */
  readonly headers: Array<string>
  /** Whether the request carries a body (a non-zero Content-Length or any Transfer-Encoding). */
  readonly hasBody: boolean
}

export const forwardRequestHeaders = (
  raw: ReadonlyArray<string>,
  clientAddress: string,
  scheme: "http" | "https" = "http",
): ForwardedRequestHeaders => {
  const headers: Array<string> = []
  let hasBody = false
  let forwardedFor: string | undefined
  let host: string | undefined
  let authority = false
  let hasProto = false
  let hasForwardedHost = false
  let listed: Set<string> | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase()
    if (name === "connection") listed = connectionListed(raw[i + 1]!)
  }
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    const value = raw[i + 1]!
    const lower = name.toLowerCase()
    if (lower === "transfer-encoding") hasBody = true
    else if (lower === "content-length") hasBody ||= value.trim() !== "0"
    if (HOP_BY_HOP.has(lower) || listed?.has(lower)) continue
    if (lower.charCodeAt(0) === COLON) {
      // HTTP/2's pseudo-headers: the method and path travel apart; the authority is the Host, and
      // comes first, so a Host sent beside it (equal to it, RFC 9113 §8.3.1) is not sent twice.
      if (lower === ":authority" && host === undefined) {
        host = value
        authority = true
        headers.push("host", value)
      }
      continue
    }
    if (authority && lower === "host") continue
    if (lower === "x-forwarded-for") {
      forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`
      continue
    }
    if (lower === "host") host = value
    else if (lower === "x-forwarded-proto") hasProto = true
    else if (lower === "x-forwarded-host") hasForwardedHost = true
    headers.push(name, value)
  }
  headers.push(
    "x-forwarded-for",
    forwardedFor === undefined ? clientAddress : `${forwardedFor}, ${clientAddress}`,
  )
  if (!hasProto) headers.push("x-forwarded-proto", scheme)
  if (!hasForwardedHost && host !== undefined) headers.push("x-forwarded-host", host)
  return { headers, hasBody }
}

/** Where a response's load report goes, and whether the client sees it too. */
export interface LoadReports {
  readonly reportLoad: (header: string) => void
}

/**
 * The replica's response headers (raw, as undici reports them) minus the hop-by-hop ones. A load
 * report (`endpoint-load-metrics`) is handed to `loadReports` and kept from the client unless
 * `forwardLoadReports`; without a recipient it passes like any header.
 */
export const forwardResponseHeaders = (
  raw: ReadonlyArray<Buffer>,
  loadReports?: LoadReports,
  forwardLoadReports = false,
): Array<string> => {
  const headers: Array<string> = []
  let listed: Set<string> | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString("latin1")
    const value = raw[i + 1]!.toString("latin1")
    const lower = name.toLowerCase()
    if (lower === "connection") listed = connectionListed(value)
    if (HOP_BY_HOP.has(lower)) continue
    if (loadReports !== undefined && lower === LOAD_REPORT_HEADER) {
      loadReports.reportLoad(value)
      if (!forwardLoadReports) continue
    }
    headers.push(name, value)
  }
  if (listed === undefined) return headers
  return headers.filter((_, i, all) => !listed.has((i % 2 === 0 ? all[i]! : all[i - 1]!).toLowerCase()))
}

/** `::ffff:10.0.0.1` (an IPv4 client on a dual-stack socket) reads better as `10.0.0.1`. */
export const clientAddressOf = (remoteAddress: string | undefined): string =>
  remoteAddress === undefined
    ? "unknown"
    : remoteAddress.startsWith("::ffff:")
      ? remoteAddress.slice(7)
      : remoteAddress
