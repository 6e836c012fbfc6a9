#!/usr/bin/env bash
# CI set-up for the docker-marked tests: a Docker engine, the base image, both training images.
#
#   images/setup-docker.sh          (from the repo root, in the project's virtualenv)
#
# Installs docker.io and debootstrap when missing (root only), starts dockerd when no engine
# answers (waiting up to 60 s), makes the base image with images/make-base-image.sh and builds
# mutator-keras and mutator-sklearn on it; each step is skipped when already done. Never fails
# the caller: when Docker cannot run here it says why, and the docker-marked tests skip.
set -uo pipefail
cd "$(dirname "$0")/.."
base_image="${MUTATOR_BASE_IMAGE:-mutator-base:bookworm-py311}"

say() { echo "docker set-up: $*"; }

if ! command -v docker >/dev/null || ! command -v debootstrap >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing docker.io and debootstrap"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            docker.io debootstrap >/tmp/mutator-apt.log 2>&1 \
            || { tail -n 5 /tmp/mutator-apt.log; say "apt-get failed; docker tests will skip"; exit 0; }
    else
        say "docker or debootstrap is missing and I cannot install them (not root); docker tests will skip"
        exit 0
    fi
fi

if ! docker info >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
        say "no Docker engine answers and I cannot start one (not root); docker tests will skip"
        exit 0
    fi
    say "starting dockerd (log: /tmp/dockerd.log)"
    setsid dockerd >/tmp/dockerd.log 2>&1 < /dev/null &
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    if ! docker info >/dev/null 2>&1; then
        tail -n 5 /tmp/dockerd.log
        say "dockerd did not come up within 60 s (last lines above); docker tests will skip"
        exit 0
    fi
fi

images/make-base-image.sh "$base_image" || { say "could not make $base_image"; exit 0; }

MUTATOR_BASE_IMAGE="$base_image" python - <<'PY' || say "an image failed to build; the docker tests will say which"
import os
import sys
import time

from mutator.containers.images import IMAGE_NAMES, build_image, list_images


def show_step(line):
    if line.startswith("Step "):
        print("   ", line[:110], flush=True)


built = {info.kind for info in list_images() if info.size is not None}
for kind in IMAGE_NAMES:
    # Always rebuild: Docker's layer cache makes it seconds when nothing changed, and the
    # image must hold this checkout's mutator, not a previous one's.
    started = time.monotonic()
    print(f"docker set-up: building {IMAGE_NAMES[kind]}" + (" (cached layers)" if kind in built else ""))
    sys.stdout.flush()
    build_image(
        kind,
        base_image=os.environ["MUTATOR_BASE_IMAGE"],
        progress=show_step,
    )
    print(f"docker set-up: {IMAGE_NAMES[kind]} ready in {time.monotonic() - started:.0f} s")
PY
exit 0
