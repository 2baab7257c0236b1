/**
 * Least expected wait over in-flight requests and observed latency, after Prequal's hot-cold rule
 * (Wydrowski et al., "Load is not what you should balance", NSDI 2024).
 *
 * A pick compares every candidate when there are few (up to COMPARE_ALL_UP_TO), as NGINX's and
 * HAProxy's least-connections do; with more it compares two, the next one in rotation and one other
 * at random, so a pick stays cheap at any pool size. Either way the comparison starts at the rotating
 * candidate and a tie keeps it, so ties take turns. With two of three compared, a pick that draws a
 * slow replica with nothing in flight and a fast one that is busy gives the request to the slow one,
 * while the idle fast replica is not looked at; a slow replica's share, and the tail, grow with it.
 *
 * A candidate is hot when more of the candidates than the ADAPTIVE_HOT_QUANTILE rank have fewer
 * requests in flight. A cold candidate beats a hot one; two hot ones are compared on in-flight count;
 * two cold ones on expected wait, latency × (in flight + 1), as Finagle's peak-EWMA cost does. Prequal
 * compares cold replicas on latency alone; among three equal replicas that lets a small latency lead
 * pile requests on one of them, which a CPU-quota replica answers with throttling stalls, so in-flight
 * requests still count. In-flight counts react at once; latency says which replica is fast.
 *
 * In flight means the replica's own count when it reports one (`endpoint-load-metrics`,
 * `named_metrics.rif`) and the report is fresh: the count at the report plus what this balancer has
 * sent and finished since. Several balancers in front of the same replicas then see each other's
 * requests, which their own counts miss. Without reports it is this balancer's count.
 *
 * A replica's latency is a decaying mean of its exchanges: an exchange's weight falls by e every
 * ADAPTIVE_DECAY, as in Finagle's and Linkerd's EWMAs, which weigh by time rather than by count so a
 * busy replica is not judged on its last few requests. The mean starts from one exchange's worth of
 * the neutral estimate, the median of the candidates', so a new replica is tried, not flooded, and
 * one slow first answer does not condemn it. A replica that is avoided gets no new evidence, so its
 * old evidence also fades with the traffic that goes elsewhere: it drifts back to the median and is
 * tried again after a small share of the traffic, as Prequal keeps probing every replica.
 *
 * An answer reports a latency only once it comes; a request still waiting has already shown that
 * much of one. So a replica's latency is never taken below the wait of its oldest exchange still
 * awaiting an answer, the peak of Finagle's peak-EWMA seen before the answer rather than after: a
 * replica whose single-threaded worker is stuck on an expensive request, or that has just slowed, or
 * hangs, is passed over while it is so, instead of once its late answers have raised its mean.
 *
 * A failure that came back quickly must not make a replica look fast: it counts as a slow exchange.
 * A replica failing a large share of its exchanges also has few requests in flight, and would look
 * cold next to a busy healthy one (the sinkhole): it loses to any replica that is not failing. Its
 * failures fade with time only, so a broken replica costs clients a few requests per decay window
 * however heavy the traffic.
 *
 * CPU use is a slow signal: with a fresh reading for both replicas compared, each latency is scaled
 * by up to 1 + ADAPTIVE_CPU_WEIGHT. The replica's own report (`cpu_utilization`, a share of its
 * allowance) is preferred when fresh, then the agents' sample. Without either (static REPLICAS and no
 * reports) nothing falls back: `freshMetrics` then says the comparison did without them, and
 * `fallback` is always false.
 *
 * Weights (slow start's ramp among them) set where the rotation starts and, with two compared, which
 * other one is drawn. They also scale the loads compared, as HAProxy's weighted leastconn does:
 * in flight ÷ weight, for the hot rule and in the expected wait. Loads within a request or so of each
 * other are level, and between level replicas of equal speed the weighted rotation chooses: shares
 * follow the weights at any concurrency. A replica at a tenth of its weight (slow start) gets a tenth
 * of the turns, and is passed over once it holds fifteen requests more than the others.
 */
import { Effect, Layer, Random } from "effect"
import { LbConfig } from "../../src/Config.ts"
import type { Endpoint } from "../../src/Endpoint.ts"
import { type Choice, type Decision, Selector, type SelectorShape } from "../../src/Selector.ts"
import { isLevel, makeTurns, smoothWeighted } from "./rotation.ts"

/** Latency gaps below this are the balancer's own event-loop jitter, not a difference of replicas. */
const NOISE_FLOOR_MS = 1
/** A replica must be this much faster to be preferred: smaller gaps are within the estimates' noise. */
const TIE_MARGIN = 0.2
/** A failed exchange counts as this many times the typical response time (or its own, when longer). */
const FAILURE_PENALTY = 10
/**
 * Beyond this share of recent failures, few requests in flight no longer means spare capacity. Healthy
 * replicas fail almost never; Envoy's failure-percentage outlier detection ejects at the same 15 %.
 * At a quarter, a replica failing 30 % of its answers hovered at the threshold as its evidence faded,
 * and kept about a sixth of the traffic.
 */
const FAILING_SHARE = 0.15
/** The weight of the neutral estimate in every replica's mean, in exchanges. */
const PRIOR = 1
/**
 * An avoided replica's latency evidence fades by e every this many rounds of picks (a round being
 * one pick per candidate) beyond the two rounds a replica with its fair share waits anyway.
 */
const FADE_ROUNDS = 10
/** How often the neutral estimate is recomputed: it moves on the scale of the decay window, seconds. */
const NEUTRAL_REFRESH_MS = 100
/**
 * Up to this many candidates every one is compared; beyond it, two. Comparing costs one latency
 * estimate per candidate, so a pick stays well under a microsecond up to here.
 */
const COMPARE_ALL_UP_TO = 8
/**
 * A replica's own load report is used for this long after it arrived. Reports come with every answer,
 * so an older one means the replica gets little traffic from here, and its queue, which turns over in
 * milliseconds, may have changed by anything since.
 */
const REPORT_FRESH_MS = 1_000

/** What the selector keeps on each endpoint (`Endpoint.selection`): its decaying latency mean. */
interface Estimate {
  latencySum: number
  latencyWeight: number
  failureSum: number
  failureWeight: number
  observedAt: number
  /** The pick count when it was last observed. */
  observedPick: number
}

/**
 * mulberry32, seeded from Effect's Random at layer build: a pick runs no Effect, and a test that
 * fixes the Random service fixes the sequence. Returns a number in [0, 1).
 */
const makeRandom = (seed: number) => {
  let state = seed | 0
  return (): number => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), state | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** An index other than `skip`, at random in proportion to the endpoints' effective weights. */
const weightedOther = (endpoints: ReadonlyArray<Endpoint>, skip: number, unit: number): number => {
  let total = 0
  for (let i = 0; i < endpoints.length; i++) if (i !== skip) total += endpoints[i]!.effectiveWeight
  let rest = unit * total
  let last = skip
  for (let i = 0; i < endpoints.length; i++) {
    if (i === skip) continue
    last = i
    rest -= endpoints[i]!.effectiveWeight
    if (rest < 0) return i
  }
  return last
}

const estimateOf = (endpoint: Endpoint) => endpoint.selection as Estimate | undefined

const ascending = (x: number, y: number) => x - y

const clearlyFaster = (latencyMs: number, thanMs: number): boolean =>
  thanMs - latencyMs > Math.max(NOISE_FLOOR_MS, TIE_MARGIN * thanMs)

const make = Effect.gen(function* () {
  const config = yield* LbConfig
  // The data plane picks and observes synchronously, so the clock service is read directly; under
  // TestClock this is the test's time.
  const clock = yield* Effect.clock
  const random = makeRandom(yield* Random.nextInt)
  const nextTurn = makeTurns()
  const decayMs = config.adaptiveDecayMs
  const useMetrics = config.adaptiveCpuWeight > 0
  /** Picks so far, for the rotation and for how much traffic went by since a replica's last exchange. */
  let picks = 0
  let candidateCount = 1
  /** Every successful exchange, time-weighted: the scale of the failure penalty. */
  let typicalSum = 0
  let typicalWeight = 0
  let typicalAt = clock.unsafeCurrentTimeMillis()
  /**
   * The median of the candidates' estimates. Not the mean: slow replicas and failures would raise it
   * above the healthy ones, and a replica drifting there would not be tried again at low load.
   */
  let neutralMs = 0
  let neutralDueAt = Number.NEGATIVE_INFINITY
  const known: Array<number> = []

  const keptByTime = (since: number, now: number) => Math.exp(-Math.max(0, now - since) / decayMs)

  const keptByTraffic = (estimate: Estimate) =>
    Math.exp(
      -Math.max(0, picks - estimate.observedPick - 2 * candidateCount) / (FADE_ROUNDS * candidateCount),
    )

  const addTypical = (durationMs: number, now: number) => {
    const kept = keptByTime(typicalAt, now)
    typicalSum = typicalSum * kept + durationMs
    typicalWeight = typicalWeight * kept + 1
    typicalAt = now
  }

  /** What a failed exchange counts as: much slower than usual, however fast it failed. */
  const penaltyFor = (durationMs: number) =>
    Math.max(
      durationMs,
      FAILURE_PENALTY * Math.max(typicalWeight > 0 ? typicalSum / typicalWeight : 0, NOISE_FLOOR_MS),
    )

  const newEstimate = (now: number): Estimate => ({
    latencySum: 0,
    latencyWeight: 0,
    failureSum: 0,
    failureWeight: 0,
    observedAt: now,
    observedPick: picks,
  })

  const observe = (endpoint: Endpoint, durationMs: number, ok: boolean): void => {
    const now = clock.unsafeCurrentTimeMillis()
    if (ok) addTypical(durationMs, now)
    let estimate = estimateOf(endpoint)
    if (estimate === undefined) {
      estimate = newEstimate(now)
      endpoint.selection = estimate
    }
    const byTime = keptByTime(estimate.observedAt, now)
    const kept = byTime * keptByTraffic(estimate)
    estimate.latencySum = estimate.latencySum * kept + (ok ? durationMs : penaltyFor(durationMs))
    estimate.latencyWeight = estimate.latencyWeight * kept + 1
    estimate.failureSum = estimate.failureSum * byTime + (ok ? 0 : 1)
    estimate.failureWeight = estimate.failureWeight * byTime + 1
    estimate.observedAt = now
    estimate.observedPick = picks
  }

  const latencyOf = (endpoint: Endpoint, now: number): number => {
    const estimate = estimateOf(endpoint)
    if (estimate === undefined) return neutralMs
    const kept = keptByTime(estimate.observedAt, now) * keptByTraffic(estimate)
    return (estimate.latencySum * kept + PRIOR * neutralMs) / (estimate.latencyWeight * kept + PRIOR)
  }

  const isFailing = (endpoint: Endpoint, now: number): boolean => {
    const estimate = estimateOf(endpoint)
    if (estimate === undefined) return false
    const kept = keptByTime(estimate.observedAt, now)
    return (estimate.failureSum * kept) / (estimate.failureWeight * kept + PRIOR) > FAILING_SHARE
  }

  const refreshNeutral = (candidates: ReadonlyArray<Endpoint>, now: number) => {
    neutralDueAt = now + NEUTRAL_REFRESH_MS
    known.length = 0
    for (let i = 0; i < candidates.length; i++) {
      const estimate = estimateOf(candidates[i]!)
      if (estimate !== undefined) known.push(estimate.latencySum / estimate.latencyWeight)
    }
    known.sort(ascending)
    neutralMs = known.length === 0 ? 0 : known[known.length >> 1]!
  }

  /** The replica's own report when it is recent enough to describe its queue, else undefined. */
  const freshReport = (endpoint: Endpoint, now: number) => {
    const received = endpoint.loadReport
    return received !== undefined && now - received.receivedAt <= REPORT_FRESH_MS ? received : undefined
  }

  /**
   * Requests in flight on the replica, per unit of weight: its own count at its last fresh report
   * moved by what this balancer sent and finished since, and never below this balancer's own count.
   */
  const loadOf = (endpoint: Endpoint, now: number): number => {
    const received = freshReport(endpoint, now)
    const reported = received?.report.named.rif
    const active =
      reported === undefined
        ? endpoint.active
        : Math.max(endpoint.active, reported + endpoint.active - received!.activeAtReceipt)
    return active / endpoint.effectiveWeight
  }

  /** The factor CPU use scales latency by, or NaN without a fresh reading. */
  const cpuFactorOf = (endpoint: Endpoint, now: number): number => {
    const utilization = freshReport(endpoint, now)?.report.cpuUtilization
    if (utilization !== undefined) return 1 + config.adaptiveCpuWeight * Math.min(utilization, 1)
    const sample = endpoint.metrics
    if (sample === undefined || now - sample.sampledAt > config.metricsMaxAgeMs) return Number.NaN
    return 1 + (config.adaptiveCpuWeight * Math.min(Math.max(sample.cpuPercent, 0), 100)) / 100
  }

  /** Per candidate, for the pick under way: in flight per weight, latency, CPU factor (NaN: none). */
  const loads: Array<number> = []
  const latencies: Array<number> = []
  const cpuFactors: Array<number> = []

  /** Whether `loads` holds every candidate's load for this pick, or only the compared ones'. */
  let allLoads = false

  /** Whether more of the candidates than the hot quantile's rank carry less than `load`. */
  const isHot = (candidates: ReadonlyArray<Endpoint>, now: number, load: number): boolean => {
    const rank = Math.floor(config.adaptiveHotQuantile * (candidates.length - 1))
    let fewer = 0
    for (let i = 0; i < candidates.length; i++) {
      const other = allLoads ? loads[i]! : loadOf(candidates[i]!, now)
      if (other < load && ++fewer > rank) return true
    }
    return false
  }

  /** Candidate `i`'s latency estimate, scaled by CPU when `j`'s is known too. */
  const scaledLatency = (i: number, j: number): number =>
    Number.isNaN(cpuFactors[i]!) || Number.isNaN(cpuFactors[j]!)
      ? latencies[i]!
      : latencies[i]! * cpuFactors[i]!

  /** Whether candidate `b` is the better choice; on a tie `a`, the one chosen by rotation, stays. */
  const prefersSecond = (candidates: ReadonlyArray<Endpoint>, now: number, a: number, b: number): boolean => {
    const failingA = isFailing(candidates[a]!, now)
    if (failingA !== isFailing(candidates[b]!, now)) return failingA
    const weightA = candidates[a]!.effectiveWeight
    const weightB = candidates[b]!.effectiveWeight
    // Level loads (`isLevel`: in-flight counts are whole requests) are both hot or both cold, and
    // either way latency decides; with uneven loads only the busier one's heat matters.
    const level = isLevel(loads[a]!, weightA, loads[b]!, weightB)
    const common = Math.max(loads[a]!, loads[b]!)
    const loadA = level ? common : loads[a]!
    const loadB = level ? common : loads[b]!
    if (!failingA && !level && isHot(candidates, now, Math.max(loadA, loadB))) return loadB < loadA
    // Among cold ones, the expected wait with this request added: a replica twice as fast may hold
    // twice as many requests, and one of twice the weight twice as many again. The request added
    // counts the same on both, so idle replicas of equal speed tie and the weighted rotation decides.
    const added = 1 / Math.max(weightA, weightB)
    const costA = scaledLatency(a, b) * (loadA + added)
    const costB = scaledLatency(b, a) * (loadB + added)
    if (clearlyFaster(costB, costA)) return true
    if (clearlyFaster(costA, costB)) return false
    return loadB < loadA
  }

  /** How long the replica's oldest exchange still awaiting an answer has waited; 0 with none. */
  const oldestWait = (endpoint: Endpoint, now: number): number => {
    for (const exchange of endpoint.pending) return Math.max(0, now - exchange.sentAt)
    return 0
  }

  /** Fills candidate `i`'s latency and CPU factor for this pick; false when it has no CPU reading. */
  const estimate = (candidates: ReadonlyArray<Endpoint>, i: number, now: number): boolean => {
    latencies[i] = Math.max(latencyOf(candidates[i]!, now), oldestWait(candidates[i]!, now))
    cpuFactors[i] = useMetrics ? cpuFactorOf(candidates[i]!, now) : Number.NaN
    return !Number.isNaN(cpuFactors[i]!)
  }

  const pick = ({ endpoints: candidates, uniform }: Choice): Decision => {
    const now = clock.unsafeCurrentTimeMillis()
    const count = candidates.length
    picks = nextTurn()
    candidateCount = count
    if (now >= neutralDueAt) refreshNeutral(candidates, now)
    const turn = uniform ? picks % count : smoothWeighted(candidates)
    // Estimates of the candidates compared only; every load only if the hot rule asks for them.
    let fresh = estimate(candidates, turn, now)
    let best = turn
    if (count <= COMPARE_ALL_UP_TO) {
      for (let i = 0; i < count; i++) loads[i] = loadOf(candidates[i]!, now)
      allLoads = true
      for (let step = 1; step < count; step++) {
        const other = (turn + step) % count
        if (!estimate(candidates, other, now)) fresh = false
        if (prefersSecond(candidates, now, best, other)) best = other
      }
    } else if (count > 1) {
      const unit = random()
      const other = uniform
        ? (turn + 1 + Math.floor(unit * (count - 1))) % count
        : weightedOther(candidates, turn, unit)
      allLoads = false
      loads[turn] = loadOf(candidates[turn]!, now)
      loads[other] = loadOf(candidates[other]!, now)
      if (!estimate(candidates, other, now)) fresh = false
      if (prefersSecond(candidates, now, turn, other)) best = other
    }
    const freshMetrics = useMetrics ? fresh : undefined
    const score = Number.isNaN(cpuFactors[best]!) ? latencies[best]! : latencies[best]! * cpuFactors[best]!
    return { endpoint: candidates[best]!, score, freshMetrics, fallback: false }
  }

  const selector: SelectorShape = { algorithm: "adaptive", pick, observe }
  return selector
})

export const layer = Layer.effect(Selector, make)
