#!/usr/bin/env bash
# Fills what execution-environment.yml builds from, so that `ansible-builder build` needs no
# internet: build/ee/wheels (every Python package of every stage, for the EE's Python) and
# build/ee/collections/<namespace.name>/ (this collection as galaxy would install it, and the
# controller's installed copies of its dependencies: the versions the tests ran with).
# The wheel download is the only step that needs PyPI or a mirror (pip's configuration
# applies); an existing wheelhouse is kept unless EE_WHEELS_REFRESH=1.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${EE_BIN:-.venv/bin}
out=build/ee
py_version=${EE_PYTHON_VERSION:-3.11}
platform=${EE_PLATFORM:-manylinux2014_x86_64}
# Installed in the EE's stages besides the collection's own needs (ansible-builder v3).
builder_pkgs=(ansible-core==2.19.14 ansible-runner==2.4.3 bindep pyyaml packaging dumb-init==1.2.5)

mkdir -p "$out"
if [ ! -s "$out/wheels/.complete" ] || [ "${EE_WHEELS_REFRESH:-0}" = 1 ]; then
  rm -rf "$out/wheels.partial" && mkdir -p "$out/wheels.partial"
  # Wheels only, for the EE's Python and platform, whatever Python runs this script.
  "$bin/python" -m pip download --disable-pip-version-check --only-binary=:all: \
    --python-version "$py_version" --platform "$platform" --dest "$out/wheels.partial" \
    -r meta/ee-requirements.txt "${builder_pkgs[@]}"
  echo "python $py_version $platform" > "$out/wheels.partial/.complete"
  rm -rf "$out/wheels" && mv "$out/wheels.partial" "$out/wheels"
fi

rm -rf "$out/collections" "$out/tarball" && mkdir -p "$out/collections" "$out/tarball"
# This collection: built (galaxy.yml build_ignore applies) and installed from the tarball.
"$bin/ansible-galaxy" collection build --force --output-path "$out/tarball" . >/dev/null
"$bin/ansible-galaxy" collection install --offline --no-deps --force -p "$out/tarball/install" \
  "$out"/tarball/llmops-bluegreen-*.tar.gz >/dev/null 2>&1
mv "$out/tarball/install/ansible_collections/llmops/bluegreen" "$out/collections/llmops.bluegreen"
rm -rf "$out/tarball"
# Dependencies: the copies this controller runs (collections/requirements.yml names them).
for fqcn in community.docker community.library_inventory_filtering_v1 community.crypto ansible.posix; do
  path=$("$bin/ansible-galaxy" collection list "$fqcn" --format json 2>/dev/null |
    "$bin/python" -c 'import json,sys; print(next(iter(json.load(sys.stdin))))')
  cp -a "$path/${fqcn%%.*}/${fqcn#*.}" "$out/collections/$fqcn"
done
ls "$out/collections"
