#!/bin/sh
# Builds the SwarmGuard images from deploy/Dockerfile, and pushes them when REGISTRY is set.
#
#   deploy/build-images.sh                         # all three: load-balancer agent web-stress
#   deploy/build-images.sh load-balancer           # only some
#   REGISTRY=registry.example.com:5000 TAG=v1 deploy/build-images.sh   # build and push
#
# Images: ${REGISTRY}/swarmguard-load-balancer, swarmguard-monitoring-agent, swarmguard-web-stress
# (no REGISTRY: local names without a prefix), tag $TAG (default latest).
#
# The build context is a staging folder: the compiled JavaScript (`npm run build`, dist/), package
# files and the production dependencies installed on this host with `npm ci --omit=dev` (the host
# reaches the npm registry; containers here may not). When npm cannot install (offline), the host's
# own node_modules is copied instead. Either way the Dockerfile keeps only the packages the bundles
# import at run time (deploy/prune-modules.mjs).
set -eu

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
REGISTRY="${REGISTRY:-}"
TAG="${TAG:-latest}"
NODE_IMAGE="${NODE_IMAGE:-node:20-bookworm-slim}"
prefix="${REGISTRY:+${REGISTRY%/}/}"

log() { echo "build-images: $*" >&2; }

image_of() {
  case "$1" in
    load-balancer) echo "${prefix}swarmguard-load-balancer:$TAG" ;;
    agent) echo "${prefix}swarmguard-monitoring-agent:$TAG" ;;
    web-stress) echo "${prefix}swarmguard-web-stress:$TAG" ;;
    *) log "unknown target '$1' (load-balancer, agent, web-stress)"; exit 2 ;;
  esac
}

targets="${*:-load-balancer agent web-stress}"
for target in $targets; do image_of "$target" >/dev/null; done

# A local Engine: ensure-dockerd.sh installs (Debian's docker.io) and starts dockerd when missing.
if ! docker info >/dev/null 2>&1; then
  if [ -f "$repo/deploy/ensure-dockerd.sh" ]; then
    sh "$repo/deploy/ensure-dockerd.sh"
  else
    log "no Docker Engine answers (docker info)"; exit 1
  fi
fi

BASE_IMAGE="$NODE_IMAGE" sh "$here/base-image.sh"

# The images run the compiled JavaScript: compile it here, where the compiler (a devDependency) is.
[ -x "$repo/node_modules/.bin/esbuild" ] || { log "the bundler is missing: run npm ci first"; exit 1; }
log "compiling (npm run build)"
(cd "$repo" && npm run --silent build)

stage="$(mktemp -d "${TMPDIR:-/tmp}/swarmguard-build.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/deploy"
cp "$repo/package.json" "$repo/package-lock.json" "$repo/.dockerignore" "$stage/"
cp -R "$repo/dist" "$stage/"
cp "$here/prune-modules.mjs" "$stage/deploy/"

log "installing production dependencies (npm ci --omit=dev) into $stage"
if ! (cd "$stage" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null); then
  [ -d "$repo/node_modules" ] || { log "npm ci failed and $repo/node_modules is missing: run npm ci first"; exit 1; }
  log "npm ci failed: using the host's node_modules (devDependencies are pruned in the build)"
  rm -rf "$stage/node_modules"
  cp -R "$repo/node_modules" "$stage/node_modules"
fi

for target in $targets; do
  image="$(image_of "$target")"
  log "building $image (target $target)"
  docker build -q -f "$here/Dockerfile" --build-arg "NODE_IMAGE=$NODE_IMAGE" --target "$target" -t "$image" "$stage" >/dev/null
  log "built $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
  if [ -n "$REGISTRY" ]; then
    log "pushing $image"
    docker push -q "$image" >/dev/null
  fi
done
