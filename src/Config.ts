/** The balancer's configuration: every environment variable, decoded and checked once at start. */
import { hostname } from "node:os"
import { Context, Effect, Layer, Schema } from "effect"
import { dockerHostVariable } from "../agent/docker/connection.ts"
import { Algorithm } from "./domain/Algorithm.ts"
import { ConfigInvalid } from "./domain/ConfigInvalid.ts"
import {
  atLeastOne,
  boolean,
  fraction,
  HostAndPort,
  HttpOrigin,
  list,
  nonEmptyText,
  nonNegativeInteger,
  nonNegativeNumber,
  oneOf,
  optionalPort,
  optionalText,
  parsedBy,
  percent,
  port,
  positiveInteger,
  positiveNumber,
  seconds,
  secondsOrZero,
  urlPath,
  variable,
} from "./env.ts"
import {
  parseTrustedProxies,
  TRUSTED_PROXIES_EXPECTED,
  type TrustedProxies,
} from "./limits/client-address.ts"
import {
  defaultBurst,
  KEY_EXPECTED,
  parseRate,
  parseRateLimitKey,
  RATE_EXPECTED,
  type RateLimitPolicy,
} from "./limits/rate.ts"
import { LocalityMode } from "./locality.ts"
import { AFFINITY_EXPECTED, type Affinity, affinityOf, isAffinityText } from "./routes/route-spec.ts"
import { workerCount } from "./workers/worker-count.ts"

export interface LbConfigShape {
  readonly listenHost: string
  readonly listenPort: number
  /** With both set, the port speaks TLS (ALPN h2 and http/1.1); empty: plain HTTP/1.1. */
  readonly tlsCertFile: string
  readonly tlsKeyFile: string
  /** A plain HTTP port that answers every request with a redirect to HTTPS; undefined: none. */
  readonly httpRedirectPort: number | undefined
  readonly algorithm: Algorithm
  readonly targetService: string
  /** The route whose services read this configuration: `default` for the balancer's own. */
  readonly routeName: string
  readonly targetPort: number
  readonly network: string
  /** Static replica origins; when non-empty they replace discovery through the agents. */
  readonly replicas: ReadonlyArray<string>
  /** The routes file; empty: one route, to `REPLICAS` or `TARGET_SERVICE`. */
  readonly routesFile: string
  /** Routes from Swarm service labels, read from the Engine at `dockerHost` (a manager's). */
  readonly routesFromLabels: boolean
  readonly dockerHost: string
  /** How often the routes file (or the services' labels) is read again for changes. */
  readonly routesPollIntervalMs: number
  readonly workerNodes: ReadonlyArray<string>
  readonly metricsPort: number
  readonly agentTimeoutMs: number
  readonly cacheTtlMs: number
  readonly metricsMaxAgeMs: number
  readonly leaseDurationMs: number
  readonly leaseCleanupIntervalMs: number
  readonly cpuWeight: number
  readonly memoryWeight: number
  readonly networkWeight: number
  readonly leaseCountWeight: number
  readonly networkCapacityMbps: number
  readonly fallbackEnabled: boolean
  /** How requests stay on one replica; undefined: they do not. A route's own setting comes first. */
  readonly affinity: Affinity | undefined
  /** A bound replica takes a request only while it would hold at most this many times its share. */
  readonly affinityLoadFactor: number
  /** Prefer replicas on this balancer's node, or in its zone; `off` prefers none. */
  readonly locality: LocalityMode
  /** This balancer's node, as the agents name nodes (Swarm's node hostname). */
  readonly nodeName: string
  /** The node label that names a node's zone. */
  readonly localityZoneLabel: string
  /** The local replicas take a request while they would hold at most this many times their share. */
  readonly localityLoadFactor: number
  /** Time constant of `adaptive`'s latency estimates. */
  readonly adaptiveDecayMs: number
  /** `adaptive` counts a replica hot above this quantile of the candidates' in-flight counts. */
  readonly adaptiveHotQuantile: number
  /** How much CPU use (of the allowance, fresh metrics only) inflates `adaptive`'s estimates. */
  readonly adaptiveCpuWeight: number
  readonly healthCheckIntervalMs: number
  readonly healthCheckTimeoutMs: number
  readonly healthCheckPath: string
  readonly healthyThreshold: number
  readonly unhealthyThreshold: number
  readonly upstreamConnectTimeoutMs: number
  /** How long a replica may take to send its response headers. */
  readonly upstreamResponseTimeoutMs: number
  /** The longest silence between two chunks of a replica's response body. */
  readonly upstreamIdleTimeoutMs: number
  /** How long an unused pooled connection to a replica is kept open. */
  readonly upstreamKeepAliveTimeoutMs: number
  readonly upstreamMaxConnections: number
  /** How long a client may take to send a request's headers (slowloris guard). */
  readonly clientHeaderTimeoutMs: number
  /** How long a client may take to send a whole request, body included. */
  readonly clientRequestTimeoutMs: number
  /** How long an idle client connection is kept open between requests. */
  readonly clientKeepAliveTimeoutMs: number
  /** Largest request head (request line and headers) accepted, in bytes. */
  readonly clientMaxHeaderBytes: number
  /** Largest request body accepted, in bytes; 0 accepts any size. */
  readonly maxRequestBodyBytes: number
  /** Retries allowed, as a share of requests (a token bucket refilled by every request). */
  readonly retryBudget: number
  /** Retries the budget can hold in reserve (the bucket's size), for bursts at low traffic. */
  readonly retryBurst: number
  /** Failures in a row that eject a replica; 0 turns passive ejection off. */
  readonly outlierConsecutiveFailures: number
  /** Whether 5xx responses count as failures for ejection (connection failures always do). */
  readonly outlier5xx: boolean
  /** The first ejection's length; each further ejection doubles it. */
  readonly outlierEjectionMs: number
  readonly outlierMaxEjectionMs: number
  /** At most this share of the known replicas (in percent, at least one replica) is ejected at once. */
  readonly outlierMaxEjectedPercent: number
  /** A replica that joined or came back ramps up its share over this window; 0 turns it off. */
  readonly slowStartMs: number
  /** On SIGTERM, how long in-flight requests get to finish before connections are closed. */
  readonly drainTimeoutMs: number
  /** Processes serving the port (`LB_WORKERS`); each keeps its own routing state. */
  readonly workers: number
  readonly metricsPath: string
  readonly debugRouting: boolean
  /** Whether replicas' `endpoint-load-metrics` headers reach the client too (they are read either way). */
  readonly forwardLoadReports: boolean
  readonly logEveryNRequests: number
  /** Requests in flight to one replica from this balancer; 0: no cap. A route's, a replica's own first. */
  readonly replicaMaxRequests: number
  /** Requests that may wait for a replica below its cap; 0: none wait. */
  readonly queueSize: number
  readonly queueTimeoutMs: number
  /** The client rate limit; undefined: none. A route's own comes first. */
  readonly rateLimit: RateLimitPolicy | undefined
  /** Peers whose `X-Forwarded-For` names the client; undefined: none is trusted. */
  readonly trustedProxies: TrustedProxies | undefined
  /** Shares rate limits between balancers; empty: each counts alone. */
  readonly rateLimitRedisUrl: string
  /** The longest a request waits for Redis's decision. */
  readonly rateLimitRedisTimeoutMs: number
  /** While Redis is unreachable: `allow` falls back to this balancer's own count, `deny` answers 503. */
  readonly rateLimitOnRedisError: RedisErrorPolicy
}

export const RedisErrorPolicy = Schema.Literal("allow", "deny")
export type RedisErrorPolicy = typeof RedisErrorPolicy.Type

/** The name of the one route of a balancer configured without a routes file. */
export const DEFAULT_ROUTE = "default"

const affinityVariable = Effect.flatMap(variable("AFFINITY", optionalText, ""), (text) =>
  text === ""
    ? Effect.succeed(undefined)
    : isAffinityText(text)
      ? Effect.succeed(affinityOf(text))
      : Effect.fail(new ConfigInvalid({ variable: "AFFINITY", value: text, expected: AFFINITY_EXPECTED })),
)

const rateVariable = variable(
  "RATE_LIMIT",
  parsedBy((text) => (text === "none" ? null : parseRate(text)), `${RATE_EXPECTED}, or none`),
  "none",
)

/** `RATE_LIMIT`, `RATE_LIMIT_BURST` and `RATE_LIMIT_KEY` as one policy. */
const rateLimitVariables = Effect.gen(function* () {
  const rate = yield* rateVariable
  const burst = yield* variable("RATE_LIMIT_BURST", nonNegativeInteger, "0")
  const key = yield* variable("RATE_LIMIT_KEY", parsedBy(parseRateLimitKey, KEY_EXPECTED), "ip")
  if (rate === null) return undefined
  const policy: RateLimitPolicy = { ...rate, burst: burst === 0 ? defaultBurst(rate) : burst, key }
  return policy
})

/** A `redis://` or `rediss://` URL with a host, or empty. */
const redisUrl = parsedBy((text) => {
  if (text === "") return ""
  const url = URL.canParse(text) ? new URL(text) : undefined
  return url !== undefined && (url.protocol === "redis:" || url.protocol === "rediss:") && url.hostname !== ""
    ? text
    : undefined
}, "a redis://[user:password@]host[:port][/db] URL (rediss:// for TLS)")

const trustedProxiesVariable = variable(
  "TRUSTED_PROXIES",
  parsedBy((text) => {
    const entries = text
      .split(",")
      .map((entry) => entry.trim())
      .filter((entry) => entry !== "")
    return entries.length === 0 ? null : parseTrustedProxies(entries)
  }, TRUSTED_PROXIES_EXPECTED),
  "",
)

const load: Effect.Effect<LbConfigShape, ConfigInvalid> = Effect.gen(function* () {
  const cacheTtlMs = yield* variable("CACHE_TTL", seconds, "1")
  const config: LbConfigShape = {
    listenHost: yield* variable("LB_HOST", nonEmptyText, "0.0.0.0"),
    listenPort: yield* variable("LB_PORT", port, "8081"),
    tlsCertFile: yield* variable("TLS_CERT_FILE", optionalText, ""),
    tlsKeyFile: yield* variable("TLS_KEY_FILE", optionalText, ""),
    httpRedirectPort: (yield* variable("HTTP_REDIRECT_PORT", optionalPort, "")) ?? undefined,
    algorithm: yield* variable("LB_ALGORITHM", oneOf(Algorithm), "lease"),
    targetService: yield* variable("TARGET_SERVICE", nonEmptyText, "web-stress"),
    routeName: DEFAULT_ROUTE,
    targetPort: yield* variable("TARGET_PORT", port, "8080"),
    network: yield* variable("LB_NETWORK", nonEmptyText, "swarmguard-net"),
    replicas: yield* variable("REPLICAS", list(HttpOrigin, "comma-separated http://host:port URLs"), ""),
    routesFile: yield* variable("LB_ROUTES_FILE", optionalText, ""),
    routesFromLabels: yield* variable("ROUTES_FROM_LABELS", boolean, "false"),
    dockerHost: yield* dockerHostVariable,
    routesPollIntervalMs: yield* variable("ROUTES_POLL_INTERVAL", seconds, "1"),
    workerNodes: yield* variable(
      "WORKER_NODES",
      list(HostAndPort, "comma-separated host names or addresses, each optionally with :port"),
      "worker-1,worker-2,worker-3",
    ),
    metricsPort: yield* variable("METRICS_PORT", port, "8082"),
    agentTimeoutMs: yield* variable("AGENT_TIMEOUT", seconds, "2"),
    cacheTtlMs,
    metricsMaxAgeMs: yield* variable("METRICS_MAX_AGE", seconds, String((3 * cacheTtlMs) / 1000)),
    leaseDurationMs: yield* variable("LEASE_DURATION", seconds, "30"),
    leaseCleanupIntervalMs: yield* variable("LEASE_CLEANUP_INTERVAL", seconds, "1"),
    cpuWeight: yield* variable("CPU_WEIGHT", nonNegativeNumber, "0.5"),
    memoryWeight: yield* variable("MEMORY_WEIGHT", nonNegativeNumber, "0.3"),
    networkWeight: yield* variable("NETWORK_WEIGHT", nonNegativeNumber, "0.2"),
    leaseCountWeight: yield* variable("LEASE_COUNT_WEIGHT", nonNegativeNumber, "10.0"),
    networkCapacityMbps: yield* variable("NETWORK_CAPACITY_MBPS", positiveNumber, "100"),
    fallbackEnabled: yield* variable("FALLBACK_ENABLED", boolean, "true"),
    affinity: yield* affinityVariable,
    affinityLoadFactor: yield* variable("AFFINITY_LOAD_FACTOR", atLeastOne, "1.5"),
    locality: yield* variable("LOCALITY", oneOf(LocalityMode), "off"),
    nodeName: yield* variable("NODE_NAME", nonEmptyText, hostname()),
    localityZoneLabel: yield* variable("LOCALITY_ZONE_LABEL", nonEmptyText, "zone"),
    localityLoadFactor: yield* variable("LOCALITY_LOAD_FACTOR", atLeastOne, "2"),
    adaptiveDecayMs: yield* variable("ADAPTIVE_DECAY", seconds, "5"),
    adaptiveHotQuantile: yield* variable("ADAPTIVE_HOT_QUANTILE", fraction, "0.75"),
    adaptiveCpuWeight: yield* variable("ADAPTIVE_CPU_WEIGHT", nonNegativeNumber, "0.5"),
    healthCheckIntervalMs: yield* variable("HEALTH_CHECK_INTERVAL", seconds, "5"),
    healthCheckTimeoutMs: yield* variable("HEALTH_CHECK_TIMEOUT", seconds, "2"),
    healthCheckPath: yield* variable("HEALTH_CHECK_PATH", urlPath, "/health"),
    healthyThreshold: yield* variable("HEALTHY_THRESHOLD", positiveInteger, "2"),
    unhealthyThreshold: yield* variable("UNHEALTHY_THRESHOLD", positiveInteger, "3"),
    upstreamConnectTimeoutMs: yield* variable("UPSTREAM_CONNECT_TIMEOUT", seconds, "5"),
    upstreamResponseTimeoutMs: yield* variable("UPSTREAM_RESPONSE_TIMEOUT", seconds, "60"),
    upstreamIdleTimeoutMs: yield* variable("UPSTREAM_IDLE_TIMEOUT", seconds, "60"),
    upstreamKeepAliveTimeoutMs: yield* variable("UPSTREAM_KEEPALIVE_TIMEOUT", seconds, "4"),
    upstreamMaxConnections: yield* variable("UPSTREAM_MAX_CONNECTIONS", positiveInteger, "256"),
    clientHeaderTimeoutMs: yield* variable("CLIENT_HEADER_TIMEOUT", seconds, "10"),
    clientRequestTimeoutMs: yield* variable("CLIENT_REQUEST_TIMEOUT", seconds, "300"),
    clientKeepAliveTimeoutMs: yield* variable("CLIENT_KEEPALIVE_TIMEOUT", seconds, "65"),
    clientMaxHeaderBytes: yield* variable("CLIENT_MAX_HEADER_SIZE", positiveInteger, "16384"),
    maxRequestBodyBytes: yield* variable("MAX_REQUEST_BODY", nonNegativeInteger, "0"),
    retryBudget: yield* variable("RETRY_BUDGET", fraction, "0.1"),
    retryBurst: yield* variable("RETRY_BURST", nonNegativeInteger, "20"),
    outlierConsecutiveFailures: yield* variable("OUTLIER_CONSECUTIVE_FAILURES", nonNegativeInteger, "5"),
    outlier5xx: yield* variable("OUTLIER_5XX", boolean, "true"),
    outlierEjectionMs: yield* variable("OUTLIER_EJECTION_TIME", seconds, "10"),
    outlierMaxEjectionMs: yield* variable("OUTLIER_MAX_EJECTION_TIME", seconds, "300"),
    outlierMaxEjectedPercent: yield* variable("OUTLIER_MAX_EJECTED_PERCENT", percent, "50"),
    slowStartMs: yield* variable("SLOW_START", secondsOrZero, "0"),
    drainTimeoutMs: yield* variable("DRAIN_TIMEOUT", seconds, "25"),
    workers: yield* variable("LB_WORKERS", workerCount, "1"),
    metricsPath: yield* variable("LB_METRICS_PATH", urlPath, "/metrics"),
    debugRouting: yield* variable("DEBUG_ROUTING", boolean, "false"),
    forwardLoadReports: yield* variable("FORWARD_LOAD_REPORTS", boolean, "false"),
    logEveryNRequests: yield* variable("LOG_EVERY_N_REQUESTS", nonNegativeInteger, "100"),
    replicaMaxRequests: yield* variable("REPLICA_MAX_REQUESTS", nonNegativeInteger, "0"),
    queueSize: yield* variable("QUEUE_SIZE", nonNegativeInteger, "100"),
    queueTimeoutMs: yield* variable("QUEUE_TIMEOUT", seconds, "5"),
    rateLimit: yield* rateLimitVariables,
    trustedProxies: (yield* trustedProxiesVariable) ?? undefined,
    rateLimitRedisUrl: yield* variable("RATE_LIMIT_REDIS_URL", redisUrl, ""),
    rateLimitRedisTimeoutMs: yield* variable("RATE_LIMIT_REDIS_TIMEOUT", seconds, "0.05"),
    rateLimitOnRedisError: yield* variable("RATE_LIMIT_ON_REDIS_ERROR", oneOf(RedisErrorPolicy), "allow"),
  }
  if ((config.tlsCertFile === "") !== (config.tlsKeyFile === "")) {
    const [given, missing] =
      config.tlsCertFile === "" ? ["TLS_KEY_FILE", "TLS_CERT_FILE"] : ["TLS_CERT_FILE", "TLS_KEY_FILE"]
    return yield* new ConfigInvalid({
      variable: missing,
      value: "",
      expected: `a file, as ${given} is set: TLS needs the certificate and its key`,
    })
  }
  if (config.httpRedirectPort !== undefined && config.tlsCertFile === "") {
    return yield* new ConfigInvalid({
      variable: "HTTP_REDIRECT_PORT",
      value: String(config.httpRedirectPort),
      expected: "no value without TLS_CERT_FILE and TLS_KEY_FILE: it redirects to HTTPS",
    })
  }
  if (config.routesFromLabels && config.routesFile !== "") {
    return yield* new ConfigInvalid({
      variable: "LB_ROUTES_FILE",
      value: config.routesFile,
      expected: "no value when ROUTES_FROM_LABELS is true: routes come from one source",
    })
  }
  if ((config.routesFile !== "" || config.routesFromLabels) && config.replicas.length > 0) {
    return yield* new ConfigInvalid({
      variable: "REPLICAS",
      value: config.replicas.join(","),
      expected: "no value when LB_ROUTES_FILE or ROUTES_FROM_LABELS is set: each route names its replicas",
    })
  }
  return config
})

export class LbConfig extends Context.Tag("swarmguard/LbConfig")<LbConfig, LbConfigShape>() {
  /** Reads the environment through the current ConfigProvider (tests use `ConfigProvider.fromMap`). */
  static readonly layer: Layer.Layer<LbConfig, ConfigInvalid> = Layer.effect(LbConfig, load)
}
