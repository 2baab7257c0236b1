#!/bin/sh
# Makes the Node base image the Dockerfile's FROM names when it is absent and cannot be pulled from a
# registry (machines without Docker Hub): a root filesystem holding this machine's own `node` binary,
# the shared libraries `ldd` lists for it and the dynamic loader, plus the few files a program needs
# (/tmp, /etc/passwd with the `node` user 1000 as in the official image, nsswitch.conf), imported
# with `docker import` and tagged with the official name.
#
# It never replaces an image that already exists under that name (a real one pulled from Docker
# Hub, or one made earlier). On a machine that can reach Docker Hub it first tries `docker pull`.
#
#   deploy/base-image.sh                      # node:20-bookworm-slim
#   BASE_IMAGE=node:20-bookworm-slim NODE_BIN=/usr/local/bin/node deploy/base-image.sh
#   BASE_IMAGE_PULL=false deploy/base-image.sh   # do not try docker pull first
#
# The imported image has no shell: HEALTHCHECK and RUN lines in deploy/Dockerfile use exec form
# with `node -e`, so they work on both this image and the official one.
set -eu

BASE_IMAGE="${BASE_IMAGE:-node:20-bookworm-slim}"
NODE_BIN="${NODE_BIN:-$(command -v node)}"
BASE_IMAGE_PULL="${BASE_IMAGE_PULL:-true}"

log() { echo "base-image: $*" >&2; }

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "$BASE_IMAGE present, kept as it is"
  exit 0
fi

if [ "$BASE_IMAGE_PULL" = "true" ]; then
  # Quietly: on machines without Docker Hub this fails after a short DNS/connect attempt.
  if timeout 60 docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
    log "pulled $BASE_IMAGE"
    exit 0
  fi
  log "cannot pull $BASE_IMAGE: building it from this machine's node ($NODE_BIN)"
fi

[ -x "$NODE_BIN" ] || { log "no node binary at '$NODE_BIN' (set NODE_BIN)"; exit 1; }
version="$("$NODE_BIN" --version)"
case "$version" in
  v20.*) ;;
  *) log "warning: $NODE_BIN is $version, the image is named $BASE_IMAGE" ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root/usr/local/bin" "$root/tmp" "$root/etc" "$root/app" "$root/home/node"
chmod 1777 "$root/tmp"

# The binary where the official image has it (on PATH), its libraries at the paths ldd resolves
# (the loader's path is compiled into the binary, so it must stay where it is).
cp -L "$NODE_BIN" "$root/usr/local/bin/node"
ldd "$NODE_BIN" | awk '
  $2 == "=>" && $3 ~ /^\// { print $3 }
  $1 ~ /^\// { print $1 }
' | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
# Debian's /lib and /lib64 are links into /usr on the host; keep whatever paths ldd printed, and
# make the usual lookup directories exist so nothing else is surprised.
for dir in lib lib64 usr/lib; do [ -e "$root/$dir" ] || mkdir -p "$root/$dir"; done

cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/usr/sbin/nologin
node:x:1000:1000::/home/node:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
node:x:1000:
nogroup:x:65534:
GROUP
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
chown 1000:1000 "$root/home/node"

tar -C "$root" -cf "$work/rootfs.tar" .
docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin NODE_VERSION='"${version#v}" \
  --change 'CMD ["node"]' \
  --message "node $version from $(hostname): binary + ldd libraries, no shell (deploy/base-image.sh)" \
  "$work/rootfs.tar" "$BASE_IMAGE" >/dev/null
log "made $BASE_IMAGE ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
