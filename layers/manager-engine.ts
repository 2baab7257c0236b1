/**
 * The manager's Engine as the balancer reads it (service labels, node labels), through dockerode.
 * dockerode is loaded on first use, not at start: it brings SSH and gRPC transports whose loading
 * took about a quarter of the balancer's start, which a balancer that never reads the Engine should
 * not pay.
 */
import type Docker from "dockerode"
import { Effect, Either } from "effect"
import { connectionFromDockerHost } from "../agent/docker/connection.ts"

/** A client for the Engine at DOCKER_HOST (already validated with the other settings). */
export const managerEngine = (dockerHost: string | undefined): Effect.Effect<Docker> =>
  Effect.promise(async () => {
    const { default: Docker } = await import("dockerode")
    return new Docker(Either.getOrThrow(connectionFromDockerHost(dockerHost)))
  })
