# Sourced by the fetch scripts: downloads packages from Debian's unstable suite
# without installing anything. apt reads a sources list of its own (this machine's
# Debian mirror, suite "unstable") into lists and caches inside a work folder of the
# caller's, `apt-get download` fetches the .deb files, and `dpkg-deb -x` unpacks them.

# download_from_unstable WORK_DIR ROOT_DIR PACKAGE...
#   Unpacks every named package into ROOT_DIR; WORK_DIR is removed afterwards.
download_from_unstable() {
  local work=$1 root=$2
  shift 2
  # The mirror this machine already uses for its own release, with the suite swapped.
  local codename mirror keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
  mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' |
    awk -v release="$codename" '$2 == release { print $1; exit }')
  if [[ -z "$mirror" ]]; then
    echo "debian-unstable: no Debian mirror for '$codename' in this machine's apt sources" >&2
    return 1
  fi
  [[ -f "$keyring" ]] || { echo "debian-unstable: $keyring missing (apt-get install debian-archive-keyring)" >&2; return 1; }

  rm -rf "$work"
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs" "$root"
  echo "deb [signed-by=$keyring] $mirror unstable main" > "$work/sources.list"
  local apt_options=(
    -o "Dir::Etc::sourcelist=$work/sources.list"
    -o Dir::Etc::sourceparts=/dev/null
    -o "Dir::State::Lists=$work/lists"
    -o "Dir::Cache=$work/cache"
    -o APT::Sandbox::User=root
  )
  echo "debian-unstable: reading the unstable suite's package list"
  apt-get "${apt_options[@]}" update -qq
  (cd "$work/debs" && apt-get "${apt_options[@]}" download "$@")
  local deb
  for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$root"
  done
  rm -rf "$work"
}
