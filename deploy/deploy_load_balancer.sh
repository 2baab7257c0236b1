#!/bin/sh
# Builds the load balancer image, pushes it when REGISTRY is set, and deploys it (PRD §3.2):
# one task on a manager, on swarmguard-net, publishing 8081. Creates the whole stack
# (deploy/stack.yml: web-stress, agents, balancer) when it is not deployed yet; otherwise rolls
# the running balancer service onto the new image.
#
#   deploy/deploy_load_balancer.sh                                   # local images, stack "swarmguard"
#   REGISTRY=docker-registry.example.com deploy/deploy_load_balancer.sh
#   LB_ALGORITHM=hybrid STACK=sg TAG=v2 deploy/deploy_load_balancer.sh
#
# Run it on a swarm manager. Variables: see deploy/swarm-common.sh and deploy/stack.yml.
set -eu
. "$(cd "$(dirname "$0")" && pwd)/swarm-common.sh"

require_swarm_manager
sh "$here/build-images.sh" load-balancer
existed=false
docker service inspect "${STACK}_load-balancer" >/dev/null 2>&1 && existed=true
if [ "$existed" = true ] && [ -n "${LB_ALGORITHM:-}" ]; then
  # The stack file reads LB_ALGORITHM only when the stack is deployed; a running balancer gets it
  # with the image update below (one restart, not two).
  docker service update --quiet --detach $(resolve_flags) --env-add "LB_ALGORITHM=$LB_ALGORITHM" "${STACK}_load-balancer" >/dev/null
fi
deploy_or_update load-balancer "${IMAGE_PREFIX}swarmguard-load-balancer:$TAG"
log "balancer: http://<manager address>:8081  (/_lb/health, /_lb/replicas, /metrics)"
