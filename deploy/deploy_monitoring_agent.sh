#!/bin/sh
# Builds the monitoring agent image, pushes it when REGISTRY is set, and (re)deploys the agent on
# every node (a global service, API on each node's :8082, PRD §3.2). Creates the whole stack
# (deploy/stack.yml) when it is not deployed yet; otherwise rolls the agents onto the new image.
#
#   deploy/deploy_monitoring_agent.sh
#   REGISTRY=docker-registry.example.com deploy/deploy_monitoring_agent.sh
#
# Without REGISTRY the image exists only on this node: on a cluster of several nodes set REGISTRY
# (or `docker save | docker load` the image onto every node first). Run it on a swarm manager.
set -eu
. "$(cd "$(dirname "$0")" && pwd)/swarm-common.sh"

require_swarm_manager
sh "$here/build-images.sh" agent
deploy_or_update agent "${IMAGE_PREFIX}swarmguard-monitoring-agent:$TAG"
log "agents: http://<node address>:8082/metrics/containers on every node"
