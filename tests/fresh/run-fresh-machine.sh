#!/usr/bin/env bash
# Prove the README's `make deploy` on a fresh machine: a Docker-in-Docker container that
# has only what a new machine of this kind has (Python, gcc, make, git, the pip mirrors,
# pip config and CA bundle), a clean `git archive HEAD` of this repo, and its own empty
# /var/lib/docker. Runs `make deploy` (docker.io, base image, wheelhouse, image builds,
# the stack, the openai-SDK smoke question), then `make deploy` again, which must
# report changed=0. Prints one JSON line of figures; exits non-zero on any failure.
#
# Heavy: run it under the shared lock, as
#   flock /tmp/llmops-docker.lock tests/fresh/run-fresh-machine.sh
# KEEP=1 keeps the machine and its volume (docker exec -it fresh-machine bash).
# Logs: build/fresh/*.log (each line prefixed with its epoch time).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(git -C "$here" rev-parse --show-toplevel)"
name="${FRESH_NAME:-fresh-machine}"
volume="${name}-docker"
keep="${KEEP:-0}"
base_image="${FRESH_BASE_IMAGE:-llmops/base:bookworm}"
machine_image="llmops/fresh-machine:$(sha256sum <"$here/Dockerfile" | cut -c1-12)"
label="io.llmops.fresh-machine=1"
logs="$repo/build/fresh"
workdir=/root/llmops
mkdir -p "$logs"
rm -f "$logs"/*.log "$logs"/phases.tsv

# What a machine of this kind has, mounted read-only: pip mirrors, pip config, CA bundle.
mounts=()
for path in /opt/wheels /opt/pypi /opt/pypi-more /etc/pip.conf /etc/ssl/certs/ca-certificates.crt; do
  [[ -e $path ]] && mounts+=(-v "$path:$path:ro")
done
[[ -e $HOME/.config/pip/pip.conf ]] && mounts+=(-v "$HOME/.config/pip/pip.conf:/root/.config/pip/pip.conf:ro")
# ... and its environment for pip and TLS clients.
envs=()
while IFS= read -r var; do envs+=(-e "$var"); done < <(
  env | grep -oE '^(PIP_[A-Z_]+|SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|GIT_SSL_CAINFO)=' | tr -d =)

# Docker-in-Docker without --privileged (CAP_SYS_RESOURCE is outside the bounding set).
dind=(--cap-add=ALL --cap-drop=SYS_RESOURCE --security-opt seccomp=unconfined
      --security-opt apparmor=unconfined --security-opt systempaths=unconfined
      -v /sys/fs/cgroup:/sys/fs/cgroup:rw)

# Our own container only: it must carry our label.
ours() { [[ "$(docker inspect --format '{{index .Config.Labels "io.llmops.fresh-machine"}}' "$1" 2>/dev/null)" == 1 ]]; }

remove_machine() {
  if ours "$name"; then
    # Stop the inner containers first so that their cgroups are released cleanly.
    # shellcheck disable=SC2016  # expanded by the machine's shell
    timeout 120 docker exec "$name" sh -c 'ids=$(docker ps -aq 2>/dev/null); [ -z "$ids" ] || docker rm -f $ids' \
      >/dev/null 2>&1 || true
    docker rm -f "$name" >/dev/null
  fi
  if docker volume inspect "$volume" >/dev/null 2>&1; then
    [[ "$(docker volume inspect --format '{{index .Labels "io.llmops.fresh-machine"}}' "$volume")" == 1 ]] \
      && docker volume rm "$volume" >/dev/null
  fi
  return 0
}

failed=""
finish() {
  status=$?
  [[ $status -ne 0 && -z $failed ]] && failed="script (exit $status)"
  python3 "$here/figures.py" "$logs" "$machine_image" "${failed:-}" || true
  if [[ $keep == 1 ]]; then
    echo "KEEP=1: machine $name and volume $volume kept (docker exec -it $name bash)" >&2
  else
    remove_machine
  fi
  [[ -z $failed ]] || exit 1
}
trap finish EXIT

# phase <name> <command...>: a timed, logged step (tests/fresh/phase.sh)
source "$here/phase.sh"

build_machine_image() {
  if docker image inspect "$machine_image" >/dev/null 2>&1; then
    echo "reusing $machine_image"
  else
    docker build --build-arg BASE_IMAGE="$base_image" --tag "$machine_image" "$here"
  fi
}

start_machine() {
  remove_machine
  docker volume create --label "$label" "$volume"
  docker run -d --name "$name" --hostname "$name" --label "$label" --init \
    "${dind[@]}" -v "$volume:/var/lib/docker" "${mounts[@]}" "${envs[@]}" "$machine_image"
  # A fresh machine has no engine: the deploy must install and start it.
  if docker exec "$name" sh -c 'command -v docker || command -v dockerd'; then
    echo "the fresh machine already has docker" >&2
    return 1
  fi
}

copy_repo() {
  echo "commit $(git -C "$repo" rev-parse HEAD)"
  docker exec "$name" mkdir -p "$workdir"
  git -C "$repo" archive --format=tar HEAD | docker exec -i "$name" tar -xf - -C "$workdir"
}

# The README's command, in the machine. profile_roles only adds a timing summary.
deploy() {
  docker exec -w "$workdir" -e ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_roles "$name" make deploy
}

image_sizes() {
  docker exec "$name" sh -c 'docker image inspect --format "{{index .RepoTags 0}} {{.Size}}" \
    $(docker image ls -q --filter dangling=false | sort -u); echo "/var/lib/docker $(du -sxb /var/lib/docker | cut -f1)"'
}

phase machine_image build_machine_image
phase start start_machine
phase copy copy_repo
phase deploy deploy
phase rerun deploy
phase sizes image_sizes
# The rerun must have changed nothing.
changed="$(grep -oE ' changed=[0-9]+' "$logs/rerun.log" | cut -d= -f2 | sort -u)"
if [[ "$changed" != 0 ]]; then
  failed="rerun changed=${changed//$'\n'/,}"
  echo "== the second make deploy changed something: changed=$changed" >&2
  exit 1
fi
