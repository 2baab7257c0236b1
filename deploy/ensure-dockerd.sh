#!/bin/sh
# Makes a local Docker Engine ready for the agent's Docker tests: installs Debian's docker.io when
# missing, starts dockerd when it is not answering, and builds the busybox image when absent.
# Idempotent and quick when everything is already there; needs root (CI runs as root with apt).
set -eu

IMAGE="${SWARMGUARD_BUSYBOX_IMAGE:-swarmguard/busybox:local}"
LOG="${DOCKERD_LOG:-/var/log/dockerd.log}"

log() { echo "ensure-dockerd: $*" >&2; }

# Other jobs on the machine may be running apt at the same time: wait for its lock instead of failing.
apt_get() {
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 -qq "$@"
}

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io"
  apt_get update
  # Recommends (git, apparmor, ...) are not needed to run containers and would double the download.
  apt_get install -y --no-install-recommends docker.io >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  # A dockerd already starting (another test, another job) is waited for, not started twice.
  if ! pgrep -x dockerd >/dev/null 2>&1; then
    log "starting dockerd (log: $LOG)"
    # setsid: the Engine outlives this script and the test run that called it, like a system service.
    setsid dockerd >"$LOG" 2>&1 </dev/null &
  fi
  tries=0
  until docker info >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 60 ]; then
      log "dockerd did not answer within 30 s; last lines of $LOG:"
      tail -n 20 "$LOG" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
fi

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "building $IMAGE"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  # No Docker Hub here: the image is a root filesystem holding Debian's static busybox, imported.
  if [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; then
    busybox=/bin/busybox
  else
    (cd "$work" && apt-get download -qq busybox-static >/dev/null 2>&1) || {
      apt_get update
      (cd "$work" && apt-get download -qq busybox-static >/dev/null)
    }
    dpkg-deb -x "$work"/busybox-static_*.deb "$work/pkg"
    busybox="$work/pkg/bin/busybox"
  fi
  mkdir -p "$work/rootfs/bin" "$work/rootfs/tmp" "$work/rootfs/proc" "$work/rootfs/sys" "$work/rootfs/etc"
  cp "$busybox" "$work/rootfs/bin/busybox"
  for applet in $("$work/rootfs/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$work/rootfs/bin/$applet"
  done
  tar -C "$work/rootfs" -c . | docker import --change 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null
fi
