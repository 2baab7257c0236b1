// The comparison's scenarios and their mechanics without a cluster: the same request costs on every
// run, comparable loads, the degradation's change as the report states it, what a round sets up and
// undoes, and how long the demo and --precise plans take.
import { afterEach, describe, expect, it, vi } from "vitest"
import { applyConditions, describeChange } from "../../deploy/compare/conditions.ts"
import { DEMO, estimateS, PRECISE, resolvePlan } from "../../deploy/compare/plan.ts"
import { computePath, requestPaths, UNIT_COST_MS } from "../../deploy/compare/requests.ts"
import { capacityUnits, meanCostUnits, SCENARIOS, type ScenarioSpec } from "../../deploy/compare/scenarios.ts"
import type { ComparisonTarget } from "../../deploy/compare/target.ts"

const REPLICAS = ["web-1", "web-2", "web-3"]
const scenario = (name: string): ScenarioSpec => SCENARIOS.find((each) => each.name === name)!

/** Replica CPU busy for a scenario's arrival rate, as a share of the capacity it has. */
const utilisation = (spec: ScenarioSpec, capacity: number) =>
  (spec.load * capacityUnits(spec, REPLICAS)) / capacity

describe("request costs", () => {
  it("are one fixed path where a scenario does not mix them", () => {
    const pathOf = requestPaths(scenario("homogeneous"))
    expect(pathOf(0)).toBe(`/compute/cpu?ms=${UNIT_COST_MS}`)
    expect(pathOf(12_345)).toBe(pathOf(0))
  })

  it("are the same sequence on every run, in the scenario's proportions", () => {
    const heavy = scenario("heavy-tail")
    const first = Array.from({ length: 20_000 }, (_, i) => requestPaths(heavy)(i))
    const again = Array.from({ length: 20_000 }, (_, i) => requestPaths(heavy)(i))
    expect(again).toEqual(first)
    const heavyShare = first.filter((path) => path === computePath(20)).length / first.length
    expect(heavyShare).toBeGreaterThan(0.09)
    expect(heavyShare).toBeLessThan(0.11)
    expect(meanCostUnits(heavy)).toBeCloseTo(2.9)
  })
})

describe("scenarios", () => {
  it("each load the replicas they have at 50 to 80% and say what they do in one line", () => {
    for (const spec of SCENARIOS) {
      expect(spec.description).not.toContain("\n")
      const after = spec.change
        ? capacityUnits(spec, REPLICAS) - (1 - spec.change.fraction)
        : capacityUnits(spec, REPLICAS)
      expect(utilisation(spec, capacityUnits(spec, REPLICAS)), spec.name).toBeGreaterThanOrEqual(0.5)
      expect(utilisation(spec, after), spec.name).toBeLessThanOrEqual(0.8)
    }
  })

  it("two-balancers has slow-replica's capacities and load, to be read beside it", () => {
    const two = scenario("two-balancers")
    const slow = scenario("slow-replica")
    expect(two.capacity).toEqual(slow.capacity)
    expect(two.load).toBe(slow.load)
  })
})

/** A target that records what a round asks of it. */
const fakeTarget = () => {
  const calls: Array<string> = []
  const fractions = new Map(REPLICAS.map((name) => [name, 1]))
  const target = {
    replicas: REPLICAS,
    cores: (name: string) => 0.5 * fractions.get(name)!,
    setCapacity: async (name: string, fraction: number) => {
      calls.push(`capacity ${name} ${fraction}`)
      fractions.set(name, fraction)
    },
    setErrorShare: async (name: string, share: number) => void calls.push(`errors ${name} ${share}`),
    neighbour: async (name: string, weight: number) => {
      calls.push(`neighbour ${name} ${weight}`)
      return { note: "pinned", stop: async () => void calls.push("neighbour stop") }
    },
    stress: async () => async () => {},
  } as unknown as ComparisonTarget
  return { target, calls, fractions }
}

describe("a round's conditions", () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it("states the degradation's change: halfway, web-3, its share of what is left", () => {
    const { target } = fakeTarget()
    expect(describeChange(target, scenario("degradation"), 10)).toEqual({
      at_s: 5,
      replica: "web-3",
      fair_share_after: 0.1111,
    })
    expect(describeChange(target, scenario("homogeneous"), 10)).toBeUndefined()
  })

  it("drops the allowance halfway through the measured window and restores it after the round", async () => {
    vi.useFakeTimers()
    const { target, calls, fractions } = fakeTarget()
    const conditions = await applyConditions(target, scenario("degradation"), 1, 4)
    conditions.measuring()
    await vi.advanceTimersByTimeAsync(1_999)
    expect(fractions.get("web-3")).toBe(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(fractions.get("web-3")).toBe(0.25)
    // Half the window at 0.5 cores, half at 0.125.
    expect(conditions.cores()["web-3"]).toBeCloseTo(0.3125)
    await conditions.undo()
    expect(fractions.get("web-3")).toBe(1)
    expect(calls).toEqual(["capacity web-3 0.25", "capacity web-3 1"])
  })

  it("clears a sinkhole and stops a neighbour after the round", async () => {
    const sinkhole = fakeTarget()
    const faulty = await applyConditions(sinkhole.target, scenario("sinkhole"), 1, 4)
    await faulty.undo()
    expect(sinkhole.calls).toEqual(["errors web-3 0.3", "errors web-3 0"])

    const noisy = fakeTarget()
    const hogged = await applyConditions(noisy.target, scenario("noisy-neighbour"), 1, 4)
    expect(hogged.note).toBe("pinned")
    await hogged.undo()
    expect(noisy.calls).toEqual(["neighbour web-1 3", "neighbour stop"])
  })
})

describe("plans", () => {
  const all = SCENARIOS.map((each) => each.name)
  const given = {
    precise: false,
    rounds: undefined,
    durationS: undefined,
    warmupS: undefined,
    algorithms: undefined,
    scenarios: undefined,
    loadReports: true,
  }

  it("the demo runs every scenario with adaptive, round-robin and the references in about 5 minutes", () => {
    const plan = resolvePlan(given)
    expect(plan.algorithms).toEqual(DEMO.algorithms)
    expect(plan.options.scenarios).toEqual(all)
    expect(estimateS(plan.options, 6)).toBeLessThan(330)
  })

  it("--precise runs longer rounds, and any option given overrides the preset", () => {
    const precise = resolvePlan({ ...given, precise: true })
    expect(precise.options).toMatchObject({ rounds: PRECISE.rounds, durationS: PRECISE.durationS })
    const chosen = resolvePlan({ ...given, precise: true, rounds: 2, algorithms: ["lease"] })
    expect(chosen.options.rounds).toBe(2)
    expect(chosen.algorithms).toEqual(["lease"])
  })
})
