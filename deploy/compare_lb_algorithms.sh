#!/usr/bin/env bash
# Compares the balancer's algorithms on the deployed Swarm stack (the PRD's script name):
#
#   deploy/compare_lb_algorithms.sh [--duration S] [--scenarios a,b] [--algorithms x,y] ...
#
# Deploys the stack first when it is not there (images built locally when missing, as
# deploy_load_balancer.sh does), then runs `npm run compare -- --target swarm` with the options given,
# which switches LB_ALGORITHM with `docker service update`, restores it at the end, and writes
# reports/<timestamp>/report.{json,html,md}. Needs a swarm manager (docker swarm init).
set -euo pipefail
. "$(dirname "$0")/swarm-common.sh"

require_swarm_manager
if ! docker stack ls --format '{{.Name}}' | grep -qx "$STACK"; then
  log "stack $STACK not deployed: deploying it"
  deploy_stack >/dev/null
fi
WEB_STRESS_REPLICAS="${WEB_STRESS_REPLICAS:-3}"
log "waiting for the balancer to know $WEB_STRESS_REPLICAS healthy replicas"
deadline=$(( $(date +%s) + 180 ))
until curl -sf http://127.0.0.1:8081/_lb/health 2>/dev/null | grep -q "\"replicas_healthy\":$WEB_STRESS_REPLICAS"; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    log "the stack did not converge within 180 s"; docker stack ps "$STACK" >&2; exit 1
  fi
  sleep 1
done

cd "$repo"
[ -d node_modules ] || npm ci
exec node --import tsx deploy/compare/main.ts --target swarm --stack "$STACK" "$@"
