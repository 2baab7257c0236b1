/**
 * What a route is, wherever it was written (a routes file, a service's labels): a name, a rule, where
 * its requests go, and its own settings. Decoded and checked here, so a route that is in force is
 * always a whole one.
 */
import { Either, ParseResult, Schema } from "effect"
import { ALGORITHMS, type Algorithm } from "../domain/Algorithm.ts"
import { HttpOrigin } from "../env.ts"
import {
  defaultBurst,
  KEY_EXPECTED,
  parseRate,
  parseRateLimitKey,
  RATE_EXPECTED,
  type RateLimitPolicy,
} from "../limits/rate.ts"
import { compileRule, matchesEverything, type RequestMatcher, requiredHosts } from "./rule-match.ts"
import { HTTP_TOKEN, parseRule } from "./rule-syntax.ts"

/** How requests of one client stay on one replica: a cookie the balancer sets, or a hash of a key. */
export type Affinity =
  | { readonly _tag: "Cookie" }
  | { readonly _tag: "Hash"; readonly key: "ip" }
  | { readonly _tag: "Hash"; readonly key: "header"; readonly header: string }

export interface WeightedOrigin {
  readonly origin: string
  readonly weight: number
  /** Its own cap on requests in flight; unset: the route's. */
  readonly maxRequests?: number | undefined
}

/** Where a route's requests go: replicas listed by address, or the tasks of a Swarm service. */
export type Upstream =
  | { readonly _tag: "Replicas"; readonly replicas: ReadonlyArray<WeightedOrigin> }
  | {
      readonly _tag: "Service"
      readonly service: string
      /** The tasks' port; unset: `TARGET_PORT`. */
      readonly port: number | undefined
    }

export interface RouteSpec {
  readonly name: string
  /** The rule as written, for the views. */
  readonly rule: string
  readonly matches: RequestMatcher
  /** The hosts it can match (`requiredHosts`); undefined: any. */
  readonly hosts: ReadonlySet<string> | undefined
  /** It matches every request (`matchesEverything`). */
  readonly catchAll: boolean
  /** Higher is tried first; by default the rule's length, so the more specific rule wins. */
  readonly priority: number
  /** Taken off the front of the path before the request goes to a replica. */
  readonly stripPrefix: string | undefined
  readonly upstream: Upstream
  /** Each replica's weight unless it has its own. */
  readonly weight: number
  /** Unset: the balancer's `LB_ALGORITHM`. */
  readonly algorithm: Algorithm | undefined
  readonly affinity: Affinity | undefined
  /** Unset: the balancer's `HEALTH_CHECK_PATH`. */
  readonly healthPath: string | undefined
  /** Unset: the balancer's `REPLICA_MAX_REQUESTS`, `QUEUE_SIZE` and `QUEUE_TIMEOUT`. */
  readonly maxRequests: number | undefined
  readonly queueSize: number | undefined
  readonly queueTimeoutMs: number | undefined
  /** Unset: the balancer's `RATE_LIMIT`; null: none on this route. */
  readonly rateLimit: RateLimitPolicy | null | undefined
}

/** What is wrong with a route, and where: which route and which key. */
export interface RouteProblem {
  readonly route: string
  readonly key: string
  readonly message: string
}

export const describeRouteProblem = ({ route, key, message }: RouteProblem) =>
  `route ${route}, ${key}: ${message}`

const Name = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/),
  Schema.annotations({ message: () => "expected a name of letters, digits, _ . - (up to 63)" }),
)
const Weight = Schema.Number.pipe(
  Schema.filter((n) => Number.isFinite(n) && n >= 0 && n <= 1_000),
  Schema.annotations({ message: () => "expected a weight from 0 to 1000" }),
)
const Origin = HttpOrigin.annotations({ message: () => "expected an http://host:port URL" })
const UrlPath = Schema.String.pipe(
  Schema.filter((path) => path.startsWith("/") && !/[\s?#]/.test(path)),
  Schema.annotations({ message: () => "expected a path starting with /" }),
)
const AlgorithmName = Schema.String.pipe(
  Schema.filter((text): text is Algorithm => (ALGORITHMS as ReadonlyArray<string>).includes(text)),
  Schema.annotations({ message: () => `expected one of ${ALGORITHMS.join(", ")}` }),
)
export const isAffinityText = (text: string): boolean =>
  text === "cookie" ||
  text === "hash:ip" ||
  (text.startsWith("hash:") && HTTP_TOKEN.test(text.slice("hash:".length)))

export const AFFINITY_EXPECTED = "cookie, hash:ip or hash:<header name>"

const Count = Schema.Number.pipe(
  Schema.filter((n) => Number.isInteger(n) && n >= 0 && n <= 1_000_000),
  Schema.annotations({ message: () => "expected an integer from 0 to 1000000" }),
)
const Seconds = Schema.Number.pipe(
  Schema.filter((n) => Number.isFinite(n) && n > 0 && n <= 3_600),
  Schema.annotations({ message: () => "expected a number of seconds above 0, at most 3600" }),
)
const RateText = Schema.String.pipe(
  Schema.filter((text) => text.trim() === "none" || parseRate(text) !== undefined),
  Schema.annotations({ message: () => `expected ${RATE_EXPECTED}, or none` }),
)
const RateKeyText = Schema.String.pipe(
  Schema.filter((text) => parseRateLimitKey(text) !== undefined),
  Schema.annotations({ message: () => `expected ${KEY_EXPECTED}` }),
)

const AffinityText = Schema.String.pipe(
  Schema.filter(isAffinityText),
  Schema.annotations({ message: () => `expected ${AFFINITY_EXPECTED}` }),
)

/** A route as written, before its rule is parsed: the shape routes files and labels share. */
export const RouteInput = Schema.Struct({
  name: Name,
  rule: Schema.String,
  priority: Schema.optional(Schema.Int.annotations({ message: () => "expected an integer" })),
  "strip-prefix": Schema.optional(UrlPath),
  replicas: Schema.optional(
    Schema.Array(
      Schema.Union(
        Origin,
        Schema.Struct({
          url: Origin,
          weight: Schema.optional(Weight),
          "max-requests": Schema.optional(Count),
        }),
      ),
    ),
  ),
  service: Schema.optional(Name),
  port: Schema.optional(
    Schema.Number.pipe(
      Schema.filter((n) => Number.isInteger(n) && n >= 1 && n <= 65535),
      Schema.annotations({ message: () => "expected a TCP port from 1 to 65535" }),
    ),
  ),
  weight: Schema.optional(Weight),
  algorithm: Schema.optional(AlgorithmName),
  affinity: Schema.optional(AffinityText),
  "health-path": Schema.optional(UrlPath),
  "max-requests": Schema.optional(Count),
  "queue-size": Schema.optional(Count),
  "queue-timeout": Schema.optional(Seconds),
  "rate-limit": Schema.optional(RateText),
  "rate-limit-burst": Schema.optional(Count),
  "rate-limit-key": Schema.optional(RateKeyText),
})
export type RouteInput = typeof RouteInput.Type

/** The affinity `text` names; `isAffinityText(text)` must hold. */
export const affinityOf = (text: string): Affinity =>
  text === "cookie"
    ? { _tag: "Cookie" }
    : text === "hash:ip"
      ? { _tag: "Hash", key: "ip" }
      : { _tag: "Hash", key: "header", header: text.slice("hash:".length).toLowerCase() }

/** Checks what the shape alone cannot (the rule, one upstream) and builds the route. */
export const routeSpecOf = (input: RouteInput): Either.Either<RouteSpec, RouteProblem> => {
  const problem = (key: string, message: string) => Either.left({ route: input.name, key, message })
  const rule = parseRule(input.rule)
  if (Either.isLeft(rule)) return problem("rule", `${rule.left.message} (column ${rule.left.column})`)
  if ((input.replicas === undefined) === (input.service === undefined)) {
    return problem("replicas", "give either replicas or service, not both or neither")
  }
  if (input.port !== undefined && input.service === undefined) {
    return problem("port", "is the port of a service's tasks; each replica's URL has its own")
  }
  const weight = input.weight ?? 1
  const upstream: Upstream =
    input.service !== undefined
      ? { _tag: "Service", service: input.service, port: input.port }
      : {
          _tag: "Replicas",
          replicas: input.replicas!.map((entry) =>
            typeof entry === "string"
              ? { origin: entry, weight }
              : { origin: entry.url, weight: entry.weight ?? weight, maxRequests: entry["max-requests"] },
          ),
        }
  if (upstream._tag === "Replicas" && upstream.replicas.length === 0) {
    return problem("replicas", "expected at least one replica")
  }
  const rateText = input["rate-limit"]?.trim()
  if (rateText === undefined && (input["rate-limit-burst"] ?? input["rate-limit-key"]) !== undefined) {
    return problem("rate-limit", "is missing: rate-limit-burst and rate-limit-key go with a rate-limit")
  }
  return Either.right({
    name: input.name,
    rule: input.rule,
    matches: compileRule(rule.right),
    hosts: requiredHosts(rule.right),
    catchAll: matchesEverything(rule.right),
    priority: input.priority ?? input.rule.length,
    stripPrefix: input["strip-prefix"],
    upstream,
    weight,
    algorithm: input.algorithm,
    affinity: input.affinity === undefined ? undefined : affinityOf(input.affinity),
    healthPath: input["health-path"],
    maxRequests: input["max-requests"],
    queueSize: input["queue-size"],
    queueTimeoutMs: input["queue-timeout"] === undefined ? undefined : input["queue-timeout"] * 1000,
    rateLimit: rateLimitOf(rateText, input),
  })
}

const rateLimitOf = (text: string | undefined, input: RouteInput): RateLimitPolicy | null | undefined => {
  if (text === undefined) return undefined
  const rate = parseRate(text)
  if (rate === undefined) return null
  const burst = input["rate-limit-burst"] ?? 0
  return {
    ...rate,
    burst: burst === 0 ? defaultBurst(rate) : burst,
    key: parseRateLimitKey(input["rate-limit-key"] ?? "ip")!,
  }
}

/**
 * The most specific issue of a failed decode, as a key path and a message: of a value that fits no
 * member of a union (a replica given as an object), the member that got furthest says what is wrong.
 */
export const mostSpecificIssue = (error: ParseResult.ParseError) => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  let deepest = issues[0]
  for (const issue of issues) if (issue.path.length > (deepest?.path.length ?? 0)) deepest = issue
  return { path: deepest?.path ?? [], message: deepest?.message ?? String(error) }
}
