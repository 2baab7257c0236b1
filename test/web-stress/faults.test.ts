// The sinkhole fault's draw: the asked share of requests fails, each counted, none once the share is 0.
import { describe, expect, it } from "vitest"
import { Faults } from "../../deploy/web-stress/faults.ts"

/** Draws that repeat `values` in order. */
const draws = (values: ReadonlyArray<number>) => {
  let next = 0
  return () => values[next++ % values.length]!
}

describe("faults", () => {
  it("fails the draws below the share, counts them, and stops at share 0", () => {
    const faults = new Faults(0.3, draws([0.1, 0.5, 0.29, 0.3, 0.9]))
    expect(Array.from({ length: 5 }, () => faults.failsNow())).toEqual([true, false, true, false, false])
    expect(faults.json()).toEqual({ error_share: 0.3, failed_injected: 2 })
    faults.setErrorShare(0)
    expect(faults.failsNow()).toBe(false)
    faults.setErrorShare(1)
    expect(faults.failsNow()).toBe(true)
    faults.stop()
    expect(faults.json()).toEqual({ error_share: 0, failed_injected: 3 })
  })
})
