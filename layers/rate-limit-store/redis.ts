/**
 * Rate-limit budgets in Redis (`RATE_LIMIT_REDIS_URL`), so every balancer instance spends from the same
 * budget per key. Each decision is one script run: Redis reads the key's theoretical arrival time,
 * decides by the GCRA arithmetic on its own clock and writes it back, atomically, so concurrent
 * decisions from any number of balancers never overspend and no two clocks need to agree.
 *
 * A request never waits longer than `RATE_LIMIT_REDIS_TIMEOUT` and never waits for a reconnect. While
 * Redis is unreachable the store is degraded: decisions fall back to this balancer's own buckets
 * (`RATE_LIMIT_ON_REDIS_ERROR=allow`) or are refused (`deny`), the outage is logged once, and a probe
 * brings sharing back as soon as Redis decides again.
 */
import { Duration, Effect, FiberSet, Layer, Schedule } from "effect"
import type { Redis } from "ioredis"
import { LbConfig } from "../../src/Config.ts"
import type { RateVerdict } from "../../src/limits/gcra.ts"
import {
  RateLimitStore,
  type RateLimitStoreShape,
  type StoreVerdict,
  UNAVAILABLE,
} from "../../src/RateLimitStore.ts"
import { makeMemoryBuckets, sweepForever } from "./memory.ts"

export const KEY_PREFIX = "swarmguard:ratelimit:"
/** The key the outage probe decides on: a budget no request spends from. */
const PROBE_KEY = `${KEY_PREFIX}probe`

/**
 * The GCRA decision of src/limits/gcra.ts, run inside Redis. KEYS[1]: the budget's key; ARGV: the
 * interval and the tolerance (interval × burst), in ms. Redis's own clock is the only clock. Returns
 * {allowed, a, b}: when allowed, a is the tolerance left and b the time until the bucket is full;
 * when refused, a is the time until a request would be admitted and b the time until full. Numbers go
 * back as strings: Redis would truncate a Lua number to an integer.
 */
const GCRA_SCRIPT = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local ahead = tat + interval - now
if ahead > tolerance + 0.000001 then
  return {0, tostring(ahead - tolerance), tostring(tat - now)}
end
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', math.ceil(ahead))
return {1, tostring(tolerance - ahead), tostring(ahead)}
`

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

type GcraReply = [number, string, string]

interface ScriptedRedis extends Redis {
  swarmguardGcra(key: string, interval: number, tolerance: number): Promise<GcraReply>
}

/** How often a degraded store asks Redis whether it is back. */
const PROBE_INTERVAL = Duration.millis(250)

/** Reconnection delay after the n-th failed attempt: quick, and never more than half a second. */
const reconnectDelayMs = (attempt: number) => Math.min(attempt * 50, 500)

const verdictOf = ([allowed, a, b]: GcraReply, intervalMs: number): RateVerdict =>
  allowed === 1
    ? {
        allowed: true,
        remaining: Math.floor((Number(a) + 1e-6) / intervalMs),
        resetMs: Number(b),
        retryAfterMs: 0,
      }
    : { allowed: false, remaining: 0, resetMs: Number(b), retryAfterMs: Number(a) }

export const layer = Layer.scoped(
  RateLimitStore,
  Effect.gen(function* () {
    const config = yield* LbConfig
    const clock = yield* Effect.clock
    // Outages are noticed on the data plane, outside any fiber: they log through this layer's runtime.
    const run = yield* FiberSet.makeRuntime<never>()
    const local = makeMemoryBuckets(() => clock.unsafeCurrentTimeMillis())
    yield* sweepForever(local)

    // Loaded here, not at start: a balancer without a shared limit never pays for the client.
    const { Redis } = yield* Effect.promise(() => import("ioredis"))
    const client = new Redis(config.rateLimitRedisUrl, {
      lazyConnect: true,
      // A request is never held for a reconnect: without a connection a call fails at once.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: config.rateLimitRedisTimeoutMs,
      connectTimeout: Math.max(1_000, config.rateLimitRedisTimeoutMs),
      retryStrategy: reconnectDelayMs,
    }) as ScriptedRedis
    client.defineCommand("swarmguardGcra", { numberOfKeys: 1, lua: GCRA_SCRIPT })
    // Failures surface through the calls and the state below; an unheard `error` event would throw.
    client.on("error", () => {})

    let degraded = false
    /** The layer is closing: the connection's end is no outage. */
    let closing = false
    let outages = 0
    let redisErrors = 0
    let localDecisions = 0
    let unavailableDecisions = 0

    const goDown = (why: string) => {
      if (degraded || closing) return
      degraded = true
      outages++
      const fallback =
        config.rateLimitOnRedisError === "allow"
          ? "each balancer counts its own budget"
          : "rate-limited requests are refused with 503"
      run(
        Effect.logError(`rate limits are not shared while Redis cannot decide: ${fallback}`).pipe(
          Effect.annotateLogs({ reason: why }),
        ),
      )
    }

    const comeBack = () => {
      if (!degraded) return
      degraded = false
      run(Effect.logInfo("Redis decides again: rate limits are shared"))
    }

    client.on("close", () => goDown("connection closed"))

    const fallback = (key: string, intervalMs: number, burst: number): StoreVerdict => {
      if (config.rateLimitOnRedisError === "deny") {
        unavailableDecisions++
        return UNAVAILABLE
      }
      localDecisions++
      return local.take(key, intervalMs, burst)
    }

    const take = (key: string, intervalMs: number, burst: number): StoreVerdict | Promise<StoreVerdict> => {
      if (degraded) return fallback(key, intervalMs, burst)
      return client.swarmguardGcra(KEY_PREFIX + key, intervalMs, intervalMs * burst).then(
        (reply) => verdictOf(reply, intervalMs),
        (error: unknown) => {
          redisErrors++
          goDown(messageOf(error))
          return fallback(key, intervalMs, burst)
        },
      )
    }

    yield* Effect.promise(() => client.connect().catch((error: unknown) => goDown(messageOf(error))))
    // Redis is back when a decision works again. A Redis that answers PING but refuses the script
    // (read-only after a failover, out of memory, no permission) is still out, and a timed-out call
    // leaves the connection open, so no connection event would tell.
    const probe = () => client.swarmguardGcra(PROBE_KEY, 1, Number.MAX_SAFE_INTEGER).then(comeBack, () => {})
    yield* Effect.promise(() => (degraded ? probe() : Promise.resolve())).pipe(
      Effect.repeat(Schedule.spaced(PROBE_INTERVAL)),
      Effect.forkScoped,
    )
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closing = true
        client.disconnect()
      }),
    )

    const store: RateLimitStoreShape = {
      take,
      status: () => ({
        backend: "redis",
        degraded,
        outages,
        redisErrors,
        localDecisions,
        unavailableDecisions,
      }),
    }
    return store
  }),
)
