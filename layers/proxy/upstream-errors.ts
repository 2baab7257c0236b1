/** What an upstream error code says about the replica and about trying the request elsewhere. */
import type { UpstreamFailure, UpstreamFailureKind } from "../../src/Attempt.ts"

/** Raised before the connection carried a byte of the request: the replica is unreachable. */
const CONNECT_FAILURES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "ENOTFOUND",
  "EAI_AGAIN",
])

/**
 * The connection broke before any response byte arrived (a replica killed mid-request, a keep-alive
 * connection the replica closed as we reused it). RFC 9110 §9.2.2 lets an idempotent request be
 * sent again; the replica is not marked down for it, a closing connection is not a dead replica.
 */
const RESETS: ReadonlySet<string> = new Set(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET"])

/** undici refused to send the request as it is (a path or header it will not write): the client's fault. */
export const UNSENDABLE: ReadonlySet<string> = new Set(["UND_ERR_INVALID_ARG", "UND_ERR_NOT_SUPPORTED"])

const kindOf = (code: string): UpstreamFailureKind =>
  code === "UND_ERR_CONNECT_TIMEOUT"
    ? "connect_timeout"
    : CONNECT_FAILURES.has(code)
      ? "refused"
      : RESETS.has(code)
        ? "reset"
        : code === "UND_ERR_HEADERS_TIMEOUT"
          ? "response_timeout"
          : code === "UND_ERR_BODY_TIMEOUT"
            ? "idle_timeout"
            : "other"

/**
 * A failed connection or a reset may be retried. So may a request with no response header in time:
 * it may still be running on the replica, but an idempotent one may run twice (RFC 9110 §9.2.2), and
 * NGINX's `proxy_next_upstream timeout` retries these by default.
 */
const RETRYABLE: ReadonlySet<UpstreamFailureKind> = new Set([
  "refused",
  "connect_timeout",
  "reset",
  "response_timeout",
])

export const upstreamFailureOf = (error: Error & { code?: string }): UpstreamFailure => {
  const kind = kindOf(error.code ?? "")
  return { kind, retryable: RETRYABLE.has(kind), reason: `${error.code ?? error.name}: ${error.message}` }
}
