/**
 * A parsed rule made into one function over the request, once per route load, so matching a request
 * is a few closure calls and string comparisons, with nothing parsed or allocated per request.
 */
import type { IncomingHttpHeaders } from "node:http"
import type { Rule } from "./rule-syntax.ts"

/** What a rule looks at, read once per request (see `requestFacts`). */
export interface RequestFacts {
  /** Lower case, without port or trailing dot. */
  readonly host: string
  /** The target's path as sent, without its query. */
  readonly path: string
  readonly method: string
  /** Node's: names in lower case, repeated headers as arrays. */
  readonly headers: IncomingHttpHeaders
}

export type RequestMatcher = (request: RequestFacts) => boolean

/** The Host header's name alone: `Example.COM:8080` and `example.com.` are `example.com`. */
export const normalizeHost = (header: string | undefined): string => {
  if (header === undefined) return ""
  let host = header.toLowerCase()
  if (host.startsWith("[")) {
    const close = host.indexOf("]")
    host = close === -1 ? host : host.slice(0, close + 1)
  } else {
    const colon = host.indexOf(":")
    if (colon !== -1) host = host.slice(0, colon)
  }
  return host.endsWith(".") ? host.slice(0, -1) : host
}

/** The facts of a request as Node's server gives it. */
export const requestFacts = (
  method: string | undefined,
  url: string | undefined,
  headers: IncomingHttpHeaders,
): RequestFacts => {
  const target = url ?? "/"
  const query = target.indexOf("?")
  return {
    // An HTTP/2 request names its host in `:authority`, which it may send instead of Host.
    host: normalizeHost(headers.host ?? (headers[":authority"] as string | undefined)),
    path: query === -1 ? target : target.slice(0, query),
    method: method ?? "GET",
    headers,
  }
}

const headerHas = (headers: IncomingHttpHeaders, name: string, value: string): boolean => {
  const present = headers[name]
  if (present === undefined) return false
  return Array.isArray(present) ? present.includes(value) : present === value
}

const anyOf = (values: ReadonlyArray<string>, test: (value: string) => boolean): boolean => {
  for (const value of values) if (test(value)) return true
  return false
}

export const compileRule = (rule: Rule): RequestMatcher => {
  switch (rule._tag) {
    case "And": {
      const left = compileRule(rule.left)
      const right = compileRule(rule.right)
      return (request) => left(request) && right(request)
    }
    case "Or": {
      const left = compileRule(rule.left)
      const right = compileRule(rule.right)
      return (request) => left(request) || right(request)
    }
    case "Not": {
      const inner = compileRule(rule.rule)
      return (request) => !inner(request)
    }
    case "Matcher": {
      const { values } = rule
      switch (rule.name) {
        case "Host": {
          const hosts = values.map(normalizeHost)
          return (request) => hosts.includes(request.host)
        }
        case "Path":
          return (request) => values.includes(request.path)
        case "PathPrefix":
          // As Traefik's: a prefix of the path's text, so `/api` also matches `/apis`.
          return (request) => anyOf(values, (prefix) => request.path.startsWith(prefix))
        case "Method": {
          const methods = values.map((method) => method.toUpperCase())
          return (request) => methods.includes(request.method)
        }
        case "Header": {
          const name = values[0]!.toLowerCase()
          const value = values[1]!
          return (request) => headerHas(request.headers, name, value)
        }
      }
    }
  }
}

/** Whether `rule` matches every request (`PathPrefix(`/`)`): matching can then skip reading the request. */
export const matchesEverything = (rule: Rule): boolean =>
  rule._tag === "Matcher" && rule.name === "PathPrefix" && rule.values.includes("/")

/**
 * The hosts a request must name for `rule` to match it, or undefined when a rule may match any host.
 * Matching tries only the routes of the request's host (and those of any host), so the cost of
 * matching does not grow with the number of services, as Envoy picks a virtual host by domain.
 */
export const requiredHosts = (rule: Rule): ReadonlySet<string> | undefined => {
  switch (rule._tag) {
    case "Matcher":
      return rule.name === "Host" ? new Set(rule.values.map(normalizeHost)) : undefined
    case "Not":
      return undefined
    case "And": {
      const left = requiredHosts(rule.left)
      const right = requiredHosts(rule.right)
      if (left === undefined) return right
      if (right === undefined) return left
      return new Set([...left].filter((host) => right.has(host)))
    }
    case "Or": {
      const left = requiredHosts(rule.left)
      const right = requiredHosts(rule.right)
      return left === undefined || right === undefined ? undefined : new Set([...left, ...right])
    }
  }
}
