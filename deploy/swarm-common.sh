# Shared by deploy_load_balancer.sh and deploy_monitoring_agent.sh (sourced, not run).
#
#   REGISTRY  registry to push to and pull from (e.g. docker-registry.example.com); empty: local
#             images only (a single-node swarm, or images loaded on every node by hand)
#   TAG       image tag (latest)      STACK   stack name (swarmguard)
#   LB_ALGORITHM, WEB_STRESS_REPLICAS, WEB_STRESS_CPUS, WEB_STRESS_MEMORY: see stack.yml
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
REGISTRY="${REGISTRY:-}"
TAG="${TAG:-latest}"
STACK="${STACK:-swarmguard}"
IMAGE_PREFIX="${REGISTRY:+${REGISTRY%/}/}"
export REGISTRY TAG STACK IMAGE_PREFIX

log() { echo "${0##*/}: $*" >&2; }

require_swarm_manager() {
  if ! docker info >/dev/null 2>&1 && [ -f "$repo/deploy/ensure-dockerd.sh" ]; then
    sh "$repo/deploy/ensure-dockerd.sh"
  fi
  state="$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null || true)"
  case "$state" in
    "active true") ;;
    active*) log "this node is a swarm worker: run the script on a manager"; exit 1 ;;
    *) log "this Engine is not in a swarm (state: ${state:-no engine}); e.g. docker swarm init --advertise-addr <this node's address>"; exit 1 ;;
  esac
}

# Without a registry the images exist only here: Swarm must not try to resolve them remotely.
resolve_flags() {
  if [ -n "$REGISTRY" ]; then echo "--with-registry-auth"; else echo "--no-resolve-image"; fi
}

# The whole stack, created or updated in place (the services' specs are compared, unchanged ones
# are left alone).
deploy_stack() {
  missing=""
  for pair in web-stress:swarmguard-web-stress agent:swarmguard-monitoring-agent load-balancer:swarmguard-load-balancer; do
    target="${pair%%:*}"
    image="${IMAGE_PREFIX}${pair#*:}:$TAG"
    if [ -z "$REGISTRY" ] && ! docker image inspect "$image" >/dev/null 2>&1; then missing="$missing $target"; fi
  done
  # shellcheck disable=SC2086
  [ -z "$missing" ] || sh "$here/build-images.sh" $missing
  if [ -n "$REGISTRY" ]; then
    docker stack deploy --with-registry-auth --resolve-image always -c "$here/stack.yml" "$STACK"
  else
    docker stack deploy --resolve-image never -c "$here/stack.yml" "$STACK"
  fi
}

# Rolls one service of the stack onto the image just built (same tag: --force restarts its tasks),
# with any further `docker service update` options given after the image, in one update; or deploys
# the whole stack when that service does not exist yet.
deploy_or_update() {
  service="${STACK}_$1"
  image="$2"
  shift 2
  if docker service inspect "$service" >/dev/null 2>&1; then
    log "updating $service to $image"
    # shellcheck disable=SC2046
    docker service update --quiet --force $(resolve_flags) "$@" --image "$image" "$service" >/dev/null
  else
    log "$service not found: deploying stack $STACK from $here/stack.yml"
    deploy_stack
  fi
  docker service ls --filter "name=${STACK}_" --format '{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}\t{{.Ports}}'
}
