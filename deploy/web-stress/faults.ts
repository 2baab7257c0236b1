/**
 * Faults a replica can be told to show. The sinkhole: it answers a share of its /compute/* requests
 * at once with a 500, doing no work, so a balancer that prefers the fastest replica is drawn to it.
 */

export class Faults {
  private share: number
  private injected = 0

  /** @param random a draw in [0, 1) per request; tests pass a fixed sequence. */
  constructor(
    errorShare: number,
    private readonly random: () => number = Math.random,
  ) {
    this.share = errorShare
  }

  setErrorShare(share: number): void {
    this.share = share
  }

  /** Whether the request in hand is to fail now, drawn at random; counted when it is. */
  failsNow(): boolean {
    if (this.share === 0 || this.random() >= this.share) return false
    this.injected++
    return true
  }

  /** Answers that were failed on purpose, since start. */
  failedInjected(): number {
    return this.injected
  }

  stop(): void {
    this.share = 0
  }

  json() {
    return { error_share: this.share, failed_injected: this.injected }
  }
}
