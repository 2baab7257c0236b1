/**
 * The retry budget: retries may add at most `RETRY_BUDGET` (a share) to the requests the balancer
 * receives. A token bucket, as gRPC's retry throttling and Finagle's RetryBudget: every request
 * deposits that share of a token, every retry spends a whole one, and the bucket holds at most
 * `RETRY_BURST` tokens (it starts full), so a replica dying under light traffic is still retried
 * while a failure of every replica cannot multiply the load on them.
 */
export interface RetryBudget {
  /** A request arrived. */
  readonly deposit: () => void
  /** Whether a retry may be sent now; spends a token when it may. */
  readonly withdraw: () => boolean
}

/** Tokens are counted in millionths, in integers: ten deposits of 0.1 must make exactly one token. */
const SCALE = 1_000_000

export const makeRetryBudget = (share: number, burst: number): RetryBudget => {
  const deposit = Math.round(share * SCALE)
  const capacity = burst * SCALE
  let tokens = capacity
  return {
    deposit: () => {
      tokens = Math.min(capacity, tokens + deposit)
    },
    withdraw: () => {
      if (tokens < SCALE) return false
      tokens -= SCALE
      return true
    },
  }
}
