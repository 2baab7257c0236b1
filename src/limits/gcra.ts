/**
 * The generic cell rate algorithm (GCRA), the token bucket written as one timestamp per key: the
 * theoretical arrival time (TAT) at which the bucket would be full again. A request is admitted when
 * taking it keeps the TAT within `burst` intervals of now. Exact at any concurrency as long as each
 * decision reads and writes the TAT at once: synchronously in a process, in one script in Redis (whose
 * script does this same arithmetic).
 */

/** What one decision found, in milliseconds. */
export interface RateVerdict {
  readonly allowed: boolean
  /** Requests that could still be sent at once after this one. */
  readonly remaining: number
  /** Until the bucket is full again (every unit of burst available). */
  readonly resetMs: number
  /** Until one request would be admitted; 0 when this one was. */
  readonly retryAfterMs: number
}

export interface GcraDecision extends RateVerdict {
  /** The key's TAT after the decision (unchanged when refused). */
  readonly tat: number
}

/**
 * Floating-point slack: an interval such as 1000/3 ms must not refuse the request that lands exactly
 * on its slot.
 */
const EPSILON_MS = 1e-6

/**
 * Decides one request at `now` for a key whose TAT is `tat` (undefined: never seen, or expired, which
 * is a full bucket). `intervalMs` is the period over the rate (10 ms for 100/s); `burst` (≥ 1) is the
 * bucket's size, how many requests an idle key may send at once.
 */
export const gcra = (
  tat: number | undefined,
  now: number,
  intervalMs: number,
  burst: number,
): GcraDecision => {
  const tolerance = intervalMs * burst
  const start = tat === undefined || tat < now ? now : tat
  const next = start + intervalMs
  const ahead = next - now
  if (ahead > tolerance + EPSILON_MS) {
    return {
      allowed: false,
      remaining: 0,
      resetMs: start - now,
      retryAfterMs: ahead - tolerance,
      tat: start,
    }
  }
  return {
    allowed: true,
    remaining: Math.floor((tolerance - ahead + EPSILON_MS) / intervalMs),
    resetMs: ahead,
    retryAfterMs: 0,
    tat: next,
  }
}
