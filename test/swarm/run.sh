#!/usr/bin/env bash
# Swarm end to end (`npm run test:swarm`): a real Engine, real images, the real stack.
#
#   1. Debian's docker.io installed and dockerd started when missing (deploy/ensure-dockerd.sh)
#   2. `docker swarm init --advertise-addr 127.0.0.1` when this Engine is in no swarm
#   3. the images built (deploy/build-images.sh: base image made offline when Docker Hub is out of reach)
#   4. the stack deployed as `swarmguard` and waited for
#   5. the assertions (test/swarm/e2e.swarm.ts, vitest with test/swarm/vitest.config.ts), then a
#      short algorithm comparison on the stack (deploy/compare, --target swarm)
#   6. always, even on failure: the stack removed and waited for (containers and network gone), the
#      swarm left when this script made it, and images this script created removed (set
#      SWARM_KEEP_IMAGES=1 to keep them).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"
export STACK=swarmguard
images=(swarmguard-load-balancer:latest swarmguard-monitoring-agent:latest swarmguard-web-stress:latest node:20-bookworm-slim swarmguard/busybox:local)

t_all=$(date +%s)
t_phase=$t_all
phase() { local now; now=$(date +%s); echo "phase $1: $((now - t_phase)) s"; t_phase=$now; }
log() { echo "test:swarm: $*" >&2; }

our_swarm=0
had_gwbridge=1
created_images=()
stack_up=0
child_pid=

remove_stack() {
  docker stack rm "$STACK" >/dev/null 2>&1 || true
  local deadline=$(( $(date +%s) + 120 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if [ -z "$(docker ps -aq --filter "label=com.docker.stack.namespace=$STACK")" ] &&
       ! docker network inspect swarmguard-net >/dev/null 2>&1; then
      return 0
    fi
    sleep 1
  done
  log "stack $STACK not fully gone after 120 s:"
  docker ps -a --filter "label=com.docker.stack.namespace=$STACK" >&2 || true
  return 1
}

cleanup() {
  local rc=$?
  set +e
  t_phase=$(date +%s)
  if [ -n "$child_pid" ] && kill -0 "$child_pid" 2>/dev/null; then
    kill -TERM "$child_pid" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$child_pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$child_pid" 2>/dev/null
    wait "$child_pid" 2>/dev/null
  fi
  if [ "$stack_up" = 1 ]; then remove_stack; fi
  if [ "$our_swarm" = 1 ]; then
    docker swarm leave --force >/dev/null && log "left the swarm this test created"
    # `swarm init` also creates the docker_gwbridge network, which `swarm leave` keeps.
    if [ "$had_gwbridge" = 0 ]; then docker network rm docker_gwbridge >/dev/null 2>&1; fi
  fi
  if [ "${SWARM_KEEP_IMAGES:-0}" != 1 ] && [ "${#created_images[@]}" -gt 0 ]; then
    docker image rm "${created_images[@]}" >/dev/null 2>&1 && log "removed images this test created: ${created_images[*]}"
  fi
  phase cleanup
  echo "total: $(( $(date +%s) - t_all )) s (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

existing=()
for image in "${images[@]}"; do
  if docker image inspect "$image" >/dev/null 2>&1; then existing+=("$image"); fi
done 2>/dev/null || true

sh deploy/ensure-dockerd.sh
# Images present before ensure-dockerd (its busybox) or the build count as ours only if absent before.
for image in "${images[@]}"; do
  case " ${existing[*]:-} " in *" $image "*) ;; *) created_images+=("$image") ;; esac
done
phase dockerd

state="$(docker info --format '{{.Swarm.LocalNodeState}}')"
had_gwbridge=0
if docker network inspect docker_gwbridge >/dev/null 2>&1; then had_gwbridge=1; fi
if [ "$state" = inactive ]; then
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
  our_swarm=1
  log "swarm initialised (it will be left at the end)"
elif [ "$state" != active ]; then
  log "swarm state is '$state': expected active or inactive"; exit 1
fi
if docker stack ls --format '{{.Name}}' | grep -qx "$STACK"; then
  log "a stack $STACK is already deployed: removing it first"
  stack_up=1
  remove_stack
fi
phase swarm

sh deploy/build-images.sh
phase build

stack_up=1
docker stack deploy --resolve-image never -c deploy/stack.yml "$STACK" >/dev/null
# Converged: the balancer knows 3 healthy replicas (the tests then wait for fresh metrics).
deadline=$(( $(date +%s) + 180 ))
until curl -sf http://127.0.0.1:8081/_lb/health 2>/dev/null | grep -q '"replicas_healthy":3'; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    log "the stack did not converge within 180 s"
    docker stack ps --no-trunc "$STACK" >&2 || true
    curl -s http://127.0.0.1:8081/_lb/replicas >&2 || true
    exit 1
  fi
  sleep 1
done
phase deploy

# In the background and waited for: an INT or TERM then reaches the trap at once (bash defers traps
# while a foreground command runs), and the cleanup stops the child before removing the stack.
./node_modules/.bin/vitest run --config test/swarm/vitest.config.ts &
child_pid=$!
wait "$child_pid"
child_pid=
phase assertions

# The comparison against this stack (`npm run compare -- --target swarm`), short: round-robin against
# adaptive with a slower replica and with growing stress, one round each; its report lands in
# reports/swarm. It switches LB_ALGORITHM with `docker service update` and restores it at the end.
node --import tsx deploy/compare/main.ts --target swarm --stack "$STACK" --reports reports/swarm \
  --scenarios slow-replica,incremental-stress --algorithms round-robin,adaptive --rounds 1 --duration 3 &
child_pid=$!
wait "$child_pid"
child_pid=
test -f reports/swarm/latest/report.json
phase compare
