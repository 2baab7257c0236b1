/**
 * The comparison's scenarios. Capacity is in units of one full replica; the arrival rate is a share
 * of the scenario's total capacity divided by the mean cost of its requests, so the same scenario
 * loads any machine alike and every scenario keeps the replicas about as busy.
 */

export interface StressPlan {
  /** The replica that gets the background CPU stress. */
  readonly replica: string
  /** CPU stress reached at the end of the run, percent of one core, added in equal steps each second. */
  readonly finalCpuPercent: number
}

/** A request's cost in units of the documented service cost, and how often it is drawn. */
export interface CostClass {
  readonly units: number
  readonly weight: number
}

/** A CPU hog in its own cgroup pinned to the same CPU as `replica`, with `weight` times its share. */
export interface NeighbourPlan {
  readonly replica: string
  readonly weight: number
}

/** Halfway through the measured window, `replica`'s allowance becomes `fraction` of a full one. */
export interface ChangePlan {
  readonly replica: string
  readonly fraction: number
}

/** `replica` answers this share of its requests with an immediate 500. */
export interface FaultPlan {
  readonly replica: string
  readonly errorShare: number
}

export interface ScenarioSpec {
  readonly name: string
  readonly description: string
  /** Replica name → fraction of a full replica's capacity; absent names are full. */
  readonly capacity: Record<string, number>
  /** Arrival rate as a fraction of the scenario's nominal capacity (before any change). */
  readonly load: number
  readonly stress: StressPlan | undefined
  /** Per-request costs drawn by the load generator; one unit each when absent. */
  readonly costs?: ReadonlyArray<CostClass>
  readonly neighbour?: NeighbourPlan
  readonly change?: ChangePlan
  readonly fault?: FaultPlan
  /** Two balancer processes of the same contender, the load split between them. */
  readonly twoBalancers?: boolean
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
  {
    name: "heavy-tail",
    description:
      "90% of requests cost 1 unit and 10% cost 20, drawn from a seeded sequence; load at 70% of " +
      "capacity, so counting requests in flight misjudges load",
    capacity: {},
    load: 0.7,
    stress: undefined,
    costs: [
      { units: 1, weight: 0.9 },
      { units: 20, weight: 0.1 },
    ],
  },
  {
    name: "noisy-neighbour",
    description:
      "a CPU hog in another cgroup, pinned to web-1's CPU with 3 times its weight, takes part of " +
      "web-1's allowance: its CPU looks normal while its answers slow down; load at 65%",
    capacity: {},
    load: 0.65,
    stress: undefined,
    neighbour: { replica: "web-1", weight: 3 },
  },
  {
    name: "degradation",
    description:
      "halfway through, web-3's allowance drops from 0.5 to 0.125 cores; load at 70% of the " +
      "capacity left after the drop (53% before it)",
    capacity: {},
    // 70% of 2.25 replicas, as slow-replica, over the 3 replicas there are before the drop.
    load: (0.7 * 2.25) / 3,
    stress: undefined,
    change: { replica: "web-3", fraction: 0.25 },
  },
  {
    name: "sinkhole",
    description:
      "web-3 answers 30% of its requests with an immediate 500; load at 70% of capacity: how many " +
      "errors does each balancer let through?",
    capacity: {},
    load: 0.7,
    stress: undefined,
    fault: { replica: "web-3", errorShare: 0.3 },
  },
  {
    name: "two-balancers",
    description:
      "slow-replica's capacities and load split over two balancer processes of the same kind, " +
      "each seeing only its own requests in flight",
    capacity: { "web-3": 0.25 },
    load: 0.7,
    stress: undefined,
    twoBalancers: true,
  },
]

/** Nominal capacity of a scenario in full replicas: 2.25 for two full replicas and a quarter one. */
export const capacityUnits = (scenario: ScenarioSpec, replicas: ReadonlyArray<string>): number =>
  replicas.reduce((sum, name) => sum + (scenario.capacity[name] ?? 1), 0)

/** Mean cost of the scenario's requests, in units. */
export const meanCostUnits = (scenario: ScenarioSpec): number => {
  const costs = scenario.costs ?? [{ units: 1, weight: 1 }]
  const weight = costs.reduce((sum, cost) => sum + cost.weight, 0)
  return costs.reduce((sum, cost) => sum + cost.units * cost.weight, 0) / weight
}
