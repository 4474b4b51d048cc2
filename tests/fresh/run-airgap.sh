#!/usr/bin/env bash
# Prove the air-gapped deploy: a Docker-in-Docker "fresh machine" on a Docker network created with
# --internal (no route out of the host), which must fail to reach a Debian mirror and PyPI, gets the
# bundle (make bundle) and a `git archive HEAD` of this repo, unpacks and verifies the bundle, runs
# `make deploy BUNDLE=...` (venv from the bundle's wheels, docker.io from its apt repository, images
# loaded from its archives, the stack, the openai-SDK question over HTTPS), then again (changed=0).
# Prints one JSON line of figures; exits non-zero on any failure. Everything it creates is named
# bundle-airgap* and labelled io.llmops.bundle-airgap=1, and is removed at the end unless KEEP=1.
#
#   make test-airgap                        # make bundle, then this
#   AIRGAP_BUNDLE=build/llmops-bundle-0.1.0.tar flock /tmp/llmops-docker.lock tests/fresh/run-airgap.sh
# Logs: build/airgap/*.log (each line prefixed with its epoch time).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(git -C "$here" rev-parse --show-toplevel)"
name="${AIRGAP_NAME:-bundle-airgap}"
volume="${name}-docker"
network="${name}-net"
keep="${KEEP:-0}"
version="$(sed -n 's/^version: *//p' "$repo/galaxy.yml")"
bundle="$(realpath "${AIRGAP_BUNDLE:-$repo/build/llmops-bundle-$version.tar}")"
base_image="${FRESH_BASE_IMAGE:-llmops/base:bookworm}"
machine_image="llmops/fresh-machine:$(sha256sum <"$here/Dockerfile" | cut -c1-12)"
label_key="io.llmops.bundle-airgap"
logs="$repo/build/airgap"
workdir=/root/llmops
site=/srv/llmops
mkdir -p "$logs"
rm -f "$logs"/*.log "$logs"/phases.tsv "$logs"/extra.json

[[ -f $bundle ]] || { echo "no bundle at $bundle: run make bundle first (or set AIRGAP_BUNDLE)" >&2; exit 2; }

# The pip configuration and CA bundle of a machine of this kind, so that pip really tries its index;
# NOT the local mirrors (/opt/wheels, /opt/pypi*): those directories are what an air gap removes.
mounts=()
for path in /etc/pip.conf /etc/ssl/certs/ca-certificates.crt; do
  [[ -e $path ]] && mounts+=(-v "$path:$path:ro")
done
[[ -e $HOME/.config/pip/pip.conf ]] && mounts+=(-v "$HOME/.config/pip/pip.conf:/root/.config/pip/pip.conf:ro")

# Docker-in-Docker without --privileged (CAP_SYS_RESOURCE is outside the bounding set).
dind=(--cap-add=ALL --cap-drop=SYS_RESOURCE --security-opt seccomp=unconfined
      --security-opt apparmor=unconfined --security-opt systempaths=unconfined
      -v /sys/fs/cgroup:/sys/fs/cgroup:rw)

# Only what carries our label is ever removed.
labelled() { [[ "$(docker "$1" inspect --format "{{index .Labels \"$label_key\"}}" "$2" 2>/dev/null)" == 1 ]]; }
ours() { [[ "$(docker inspect --format "{{index .Config.Labels \"$label_key\"}}" "$1" 2>/dev/null)" == 1 ]]; }

remove_all() {
  if ours "$name"; then
    # shellcheck disable=SC2016  # expanded by the machine's shell
    timeout 120 docker exec "$name" sh -c 'ids=$(docker ps -aq 2>/dev/null); [ -z "$ids" ] || docker rm -f $ids' \
      >/dev/null 2>&1 || true
    docker rm -f "$name" >/dev/null
  fi
  if labelled volume "$volume"; then docker volume rm "$volume" >/dev/null; fi
  if labelled network "$network"; then docker network rm "$network" >/dev/null; fi
  return 0
}

failed=""
finish() {
  status=$?
  [[ $status -ne 0 && -z $failed ]] && failed="script (exit $status)"
  python3 "$here/figures.py" "$logs" "$machine_image" "${failed:-}" "$logs/extra.json" || true
  if [[ $keep == 1 ]]; then
    echo "KEEP=1: machine $name, volume $volume and network $network kept (docker exec -it $name bash)" >&2
  else
    remove_all
  fi
  [[ -z $failed ]] || exit 1
}
trap finish EXIT

# phase <name> <command...>: a timed, logged step (tests/fresh/phase.sh)
source "$here/phase.sh"

in_machine() { docker exec -w "$workdir" "$name" "$@"; }

build_machine_image() {
  if docker image inspect "$machine_image" >/dev/null 2>&1; then
    echo "reusing $machine_image"
  else
    docker build --build-arg BASE_IMAGE="$base_image" --tag "$machine_image" "$here"
  fi
}

start_machine() {
  remove_all
  docker network create --internal --label "$label_key=1" "$network"
  docker volume create --label "$label_key=1" "$volume"
  docker run -d --name "$name" --hostname "$name" --label "$label_key=1" --init --network "$network" \
    "${dind[@]}" -v "$volume:/var/lib/docker" "${mounts[@]}" "$machine_image"
  if docker exec "$name" sh -c 'command -v docker || command -v dockerd'; then
    echo "the machine already has docker" >&2
    return 1
  fi
}

# The air gap, shown from inside: no route to a Debian mirror nor to PyPI. Each attempt must fail.
prove_airgap() {
  local reached=()
  if docker exec "$name" apt-get update --error-on=any; then reached+=("apt-get update"); fi
  if docker exec "$name" sh -c 'ls /var/lib/apt/lists/*_Packages* 2>/dev/null'; then reached+=("apt lists"); fi
  # pip with the machine's configuration (index over HTTPS, CA bundle), a pin of requirements.txt.
  if docker exec "$name" python3 -m pip download --no-deps --retries 0 --timeout 15 --dest /tmp/pip-probe \
      "$(grep -m1 '^requests==' "$repo/requirements.txt")"; then reached+=("pip download"); fi
  for target in deb.debian.org:80 pypi.org:443 files.pythonhosted.org:443 1.1.1.1:53; do
    if docker exec "$name" python3 -c "import socket, sys; h, p = sys.argv[1].rsplit(':', 1)
socket.create_connection((h, int(p)), timeout=10)" "$target"; then reached+=("$target"); fi
  done
  if [[ ${#reached[@]} -gt 0 ]]; then
    echo "NOT air-gapped: the machine reached ${reached[*]}" >&2
    return 1
  fi
  echo "air gap holds: apt-get update, pip download and connections to the mirror and PyPI all failed"
}

copy_in() {
  echo "commit $(git -C "$repo" rev-parse HEAD)"
  docker exec "$name" mkdir -p "$workdir" "$site"
  git -C "$repo" archive --format=tar HEAD | docker exec -i "$name" tar -xf - -C "$workdir"
  docker cp "$bundle" "$name:/root/$(basename "$bundle")"
}

# What the operator does first: unpack, every file checked; the archive is no longer needed.
unpack() {
  in_machine python3 scripts/bundle.py unpack "/root/$(basename "$bundle")" "$site"
  in_machine rm -f "/root/$(basename "$bundle")"
}

# A changed byte is refused, naming the file (then put back).
tamper() {
  local deb bundle_dir
  bundle_dir="$site/$(basename "$bundle" .tar)"
  deb="$(docker exec "$name" sh -c "ls $bundle_dir/debs/docker.io_*.deb")"
  docker exec "$name" sh -c "cp '$deb' /tmp/saved.deb && printf x >> '$deb'"
  if in_machine python3 scripts/bundle.py verify "$bundle_dir" debs 2>"$logs/tamper.err"; then
    echo "a tampered $deb passed the verification" >&2
    return 1
  fi
  grep "debs/$(basename "$deb"): content differs" "$logs/tamper.err"
  docker exec "$name" sh -c "cp /tmp/saved.deb '$deb' && rm /tmp/saved.deb"
  in_machine python3 scripts/bundle.py verify "$bundle_dir" debs
}

deploy() {
  docker exec -w "$workdir" -e ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_roles "$name" \
    make deploy BUNDLE="$site/$(basename "$bundle" .tar)"
}

# The bundle's collection tarball installs with no Galaxy server.
collection_install() {
  # From /tmp: the checkout's ansible.cfg finds the checkout itself as the collection ("already installed").
  docker exec -w /tmp "$name" sh -c "$workdir/.venv/bin/ansible-galaxy collection install --offline --no-deps \
    -p /tmp/collections $site/$(basename "$bundle" .tar)/collection/*.tar.gz"
  in_machine test -s /tmp/collections/ansible_collections/llmops/bluegreen/MANIFEST.json
}

image_sizes() {
  docker exec "$name" sh -c 'docker image inspect --format "{{index .RepoTags 0}} {{.Size}}" \
    $(docker image ls -q --filter dangling=false | sort -u); echo "/var/lib/docker $(du -sxb /var/lib/docker | cut -f1)"'
}

printf '{"bundle": "%s", "bundle_bytes": %s}\n' "$(basename "$bundle")" "$(stat -c %s "$bundle")" >"$logs/extra.json"
phase machine_image build_machine_image
phase start start_machine
phase airgap prove_airgap
phase copy copy_in
phase unpack unpack
phase tamper tamper
phase deploy deploy
phase rerun deploy
phase collection collection_install
phase sizes image_sizes
changed="$(grep -oE ' changed=[0-9]+' "$logs/rerun.log" | cut -d= -f2 | sort -u)"
if [[ "$changed" != 0 ]]; then
  failed="rerun changed=${changed//$'\n'/,}"
  echo "== the second make deploy changed something: changed=$changed" >&2
  exit 1
fi
