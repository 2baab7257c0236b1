/**
 * The comparison's scenarios. Capacity is in units of one full replica; the arrival
 * rate is a share of the scenario's total capacity, so the same scenario loads any machine alike.
 */

export interface StressPlan {
  /** The replica that gets the background CPU stress. */
  readonly replica: string
  /** CPU stress reached at the end of the run, percent of one core, added in equal steps each second. */
  readonly finalCpuPercent: number
}

export interface ScenarioSpec {
  readonly name: string
  readonly description: string
  /** Replica name → fraction of a full replica's capacity; absent names are full. */
  readonly capacity: Record<string, number>
  /** Arrival rate as a fraction of the scenario's nominal capacity. */
  readonly load: number
  readonly stress: StressPlan | undefined
}

export const SCENARIOS: ReadonlyArray<ScenarioSpec> = [
  {
    name: "homogeneous",
    description: "3 equal replicas, CPU-bound requests, load at 70% of capacity",
    capacity: {},
    load: 0.7,
    stress: undefined,
  },
  {
    name: "slow-replica",
    description: "web-3 has a quarter of the others' CPU allowance; load at 70% of the total capacity",
    capacity: { "web-3": 0.25 },
    load: 0.7,
    stress: undefined,
  },
  {
    name: "incremental-stress",
    description:
      "background CPU stress on web-1 grows each second to 60% of its allowance while users send " +
      "traffic at 60% of the nominal capacity (the PRD's scenario 2)",
    capacity: {},
    load: 0.6,
    // 60% of a 0.5-core allowance: 30% of one core.
    stress: { replica: "web-1", finalCpuPercent: 30 },
  },
]

/** Nominal capacity of a scenario in full replicas: 2.25 for two full replicas and a quarter one. */
export const capacityUnits = (scenario: ScenarioSpec, replicas: ReadonlyArray<string>): number =>
  replicas.reduce((sum, name) => sum + (scenario.capacity[name] ?? 1), 0)
