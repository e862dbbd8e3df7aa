#!/usr/bin/env bash
# Where the stand-ins for official images live, for make-base-image.sh and
# make-compose-stand-ins.sh (which source this file) and for the tests:
#
#   stand-ins.sh look-alikes NAME...   prints each official NAME that points at a stand-in
#
# A stand-in is never tagged with the official name it stands in for: a machine that
# later pulls the real image must not find a look-alike under its name, and a test
# must not pass against one without saying so. Each lives under localhost/stand-in/
# (node:24.21.0-bookworm-slim -> localhost/stand-in/node-stand-in:24.21.0-bookworm-slim,
# quay.io/prometheus/prometheus:v3.5.3 -> localhost/stand-in/prometheus-prometheus-stand-in:v3.5.3),
# labelled wiki.stand-in-for=<official name>, and reaches a build or Compose through the
# Dockerfile's ARG NODE_IMAGE or a Compose override file.
#
# The name's last part is never an official image's: Podman resolves a short name such
# as node:24.21.0-bookworm-slim to any local image whose name ends in /node with that
# tag, so localhost/stand-in/node:24.21.0-bookworm-slim would still answer to it.

podman_() { podman --runtime runc "$@"; }

# The Debian 12 root the stand-ins are built on (make-base-image.sh caches it).
STAND_IN_DEBIAN=localhost/stand-in/debian-stand-in:bookworm-minbase

stand_in_name() { # official image name
  local name="$1" repository tag
  name="${name#docker.io/}"
  name="${name#quay.io/}"
  name="${name#library/}"
  repository="${name%:*}"
  tag="${name##*:}"
  echo "localhost/stand-in/${repository//\//-}-stand-in:$tag"
}

# Whether the image named $1 is one of ours: labelled as a stand-in, or made by an
# earlier version of these scripts, which tagged stand-ins with the official names (the
# Node.js one carries the machine's CA bundle under a stand-in name; the others are
# built on the debootstrap root, so their first layer is its only one).
is_stand_in() {
  local label env first_layer debian debian_layer
  label=$(podman_ image inspect --format '{{index .Labels "wiki.stand-in-for"}}' "$1")
  [[ -n "$label" && "$label" != "<no value>" ]] && return 0
  env=$(podman_ image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$1")
  [[ "$env" == *stand-in-ca-certificates* ]] && return 0
  first_layer=$(podman_ image inspect --format '{{index .RootFS.Layers 0}}' "$1")
  for debian in "$STAND_IN_DEBIAN" localhost/wiki-stand-in-debian:bookworm; do # (the second: its name before)
    podman_ image exists "$debian" || continue
    debian_layer=$(podman_ image inspect --format '{{index .RootFS.Layers 0}}' "$debian")
    [[ "$first_layer" == "$debian_layer" ]] && return 0
  done
  return 1
}

# An official name on a stand-in loses that tag; the image stays under its stand-in name.
untag_look_alike() { # official image name
  podman_ image exists "$1" && is_stand_in "$1" || return 0
  local id tag
  id=$(podman_ image inspect --format '{{.Id}}' "$1")
  for tag in $(podman_ image inspect --format '{{range .RepoTags}}{{println .}}{{end}}' "$1"); do
    case "$tag" in
      "$1" | "localhost/$1" | "docker.io/$1" | "docker.io/library/$1")
        echo "stand-in: removing the tag $tag from a stand-in (it is not the official image)"
        podman_ untag "$id" "$tag"
        ;;
    esac
  done
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  [[ "${1:-}" == look-alikes ]] || { echo "usage: stand-ins.sh look-alikes NAME..." >&2; exit 2; }
  shift
  for name in "$@"; do
    if podman_ image exists "$name" && is_stand_in "$name"; then echo "$name"; fi
  done
fi
