#!/usr/bin/env bash
# ansible-test must run from .../ansible_collections/<ns>/<name>/: test a copy of the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# SANITY_DEST: another place for the copy (two runs at once).
dest=${SANITY_DEST:-build/sanity}/ansible_collections/llmops/bluegreen
rm -rf "$dest" && mkdir -p "$dest"
tar --exclude=./.venv --exclude=./.cache --exclude=./collections --exclude=./playbooks/collections --exclude=./.ansible --exclude=./build --exclude=./.git \
  --exclude='./images/*/wheels' --exclude=__pycache__ --exclude=.pytest_cache -cf - . | tar -xf - -C "$dest"
# ansible-test fetches a pip bootstrap script from the internet first; on an air-gapped
# controller the standard library's ensurepip does the same job.
cache=$HOME/.ansible/test/cache
mkdir -p "$cache"
for v in 24_2 25_0 25_1; do
  f=$cache/get_pip_$v.py
  [ -s "$f" ] || echo 'import ensurepip; ensurepip.bootstrap(upgrade=True)' > "$f"
done
cd "$dest"
git init -q . 2>/dev/null || true
exec "$root/.venv/bin/ansible-test" sanity --local --python 3.11 "$@"
