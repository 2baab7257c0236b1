/** The workload's environment variables, decoded once at start; a bad value is one line naming it. */
import { hostname } from "node:os"

export interface Endpoint {
  readonly host: string
  readonly port: number
}

export interface Config {
  /** The `X-Served-By` name: the host name (a container's id in Swarm) unless `REPLICA_NAME` is set. */
  readonly name: string
  readonly host: string
  readonly port: number
  /** Multiplies `/compute/pi` iterations (and download CPU work): 4 makes a replica a quarter as fast. */
  readonly workFactor: number
  /** Where network stress sends its bytes; without it, to a sink inside this process over loopback. */
  readonly networkTarget: Endpoint | undefined
  /** When set, also accept and discard TCP traffic here, so replicas can be each other's network peers. */
  readonly sinkPort: number | undefined
  /** The share of /compute/* requests answered at once with a 500 (the sinkhole fault), from the start. */
  readonly errorShare: number
  /** Whether answers carry the `endpoint-load-metrics` header; switchable later at `/load-reports`. */
  readonly loadReports: boolean
}

export type Decoded =
  | { readonly ok: true; readonly config: Config }
  | { readonly ok: false; readonly error: string }

class Invalid {
  constructor(readonly message: string) {}
}

type Env = Readonly<Record<string, string | undefined>>

/** An empty variable counts as unset, as in the balancer's configuration. */
const raw = (env: Env, name: string): string | undefined => {
  const value = env[name]?.trim()
  return value === undefined || value === "" ? undefined : value
}

const invalid = (name: string, value: string, expected: string) =>
  new Invalid(`${name}=${JSON.stringify(value)}: expected ${expected}`)

const parsePort = (name: string, value: string): number => {
  const port = Number(value)
  if (!/^\d+$/.test(value) || port > 65535)
    throw invalid(name, value, "a TCP port, an integer from 0 to 65535")
  return port
}

const port = (env: Env, name: string, fallback: number): number => {
  const value = raw(env, name)
  return value === undefined ? fallback : parsePort(name, value)
}

const workFactor = (env: Env): number => {
  const value = raw(env, "WORK_FACTOR")
  if (value === undefined) return 1
  const factor = Number(value)
  if (!Number.isFinite(factor) || factor <= 0 || factor > 1000)
    throw invalid("WORK_FACTOR", value, "a number greater than 0, at most 1000")
  return factor
}

const errorShare = (env: Env): number => {
  const value = raw(env, "ERROR_SHARE")
  if (value === undefined) return 0
  const share = Number(value)
  if (!/^[\d.eE+-]+$/.test(value) || !Number.isFinite(share) || share < 0 || share > 1)
    throw invalid("ERROR_SHARE", value, "a number from 0 to 1")
  return share
}

const onOff = (env: Env, name: string, fallback: boolean): boolean => {
  const value = raw(env, name)
  if (value === undefined) return fallback
  const lower = value.toLowerCase()
  if (lower === "on" || lower === "true") return true
  if (lower === "off" || lower === "false") return false
  throw invalid(name, value, "on or off (or true or false)")
}

const endpoint = (env: Env, name: string): Endpoint | undefined => {
  const value = raw(env, name)
  if (value === undefined) return undefined
  const colon = value.lastIndexOf(":")
  const host = value.slice(0, colon)
  if (colon <= 0 || !/^[A-Za-z0-9._-]+$/.test(host)) throw invalid(name, value, "host:port, e.g. sink:9000")
  const port = parsePort(name, value.slice(colon + 1))
  if (port === 0) throw invalid(name, value, "host:port with a port from 1 to 65535")
  return { host, port }
}

const optionalPort = (env: Env, name: string): number | undefined =>
  raw(env, name) === undefined ? undefined : port(env, name, 0)

export const decodeConfig = (env: Env): Decoded => {
  try {
    return {
      ok: true,
      config: {
        name: raw(env, "REPLICA_NAME") ?? hostname(),
        host: raw(env, "HOST") ?? "0.0.0.0",
        port: port(env, "PORT", 8080),
        workFactor: workFactor(env),
        networkTarget: endpoint(env, "NETWORK_STRESS_TARGET"),
        sinkPort: optionalPort(env, "NETWORK_SINK_PORT"),
        errorShare: errorShare(env),
        loadReports: onOff(env, "LOAD_REPORTS", true),
      },
    }
  } catch (error) {
    // Only our own Invalid is expected here; anything else is a bug and should surface as one.
    if (error instanceof Invalid) return { ok: false, error: `invalid configuration: ${error.message}` }
    throw error
  }
}
