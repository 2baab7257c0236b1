/** What an upstream error code says about the replica and about trying the request elsewhere. */

/** Raised before the connection carried a byte of the request: the replica is unreachable. */
export const CONNECT_FAILURES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "ENOTFOUND",
  "EAI_AGAIN",
  "UND_ERR_CONNECT_TIMEOUT",
])

/**
 * The connection broke before any response byte arrived (a replica killed mid-request, a keep-alive
 * connection the replica closed as we reused it). RFC 9110 §9.2.2 lets an idempotent request be
 * sent again; the replica is not marked down for it, a closing connection is not a dead replica.
 */
export const RESET_BEFORE_RESPONSE: ReadonlySet<string> = new Set(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET"])

/**
 * No response header came in time. The request may still be running on the replica, but an idempotent
 * one may run twice (RFC 9110 §9.2.2): NGINX's `proxy_next_upstream timeout` retries these by default.
 */
export const HEADERS_TIMEOUT = "UND_ERR_HEADERS_TIMEOUT"

export const TIMEOUTS: ReadonlySet<string> = new Set([
  HEADERS_TIMEOUT,
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CONNECT_TIMEOUT",
])

/** undici refused to send the request as it is (a path or header it will not write): the client's fault. */
export const UNSENDABLE: ReadonlySet<string> = new Set(["UND_ERR_INVALID_ARG", "UND_ERR_NOT_SUPPORTED"])
