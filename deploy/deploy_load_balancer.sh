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
image="${IMAGE_PREFIX}swarmguard-load-balancer:$TAG"
if [ -n "${LB_ALGORITHM:-}" ]; then
  # The stack file reads LB_ALGORITHM when the stack is created; a running balancer gets it with
  # its image update, in one restart.
  deploy_or_update load-balancer "$image" --env-add "LB_ALGORITHM=$LB_ALGORITHM"
else
  deploy_or_update load-balancer "$image"
fi
log "balancer: http://<manager address>:8081  (/_lb/health, /_lb/replicas, /metrics)"
