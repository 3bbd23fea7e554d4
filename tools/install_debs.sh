#!/usr/bin/env bash
# Installs the Debian packages listed in tools/debian-packages.txt that are missing.
# Runs apt-get as root, or through passwordless sudo. Where neither is possible it says which
# packages are missing; under CI that is an error, elsewhere the tests that need them are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
while read -r package _; do
  [[ -z "$package" || "$package" == \#* ]] && continue
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done < tools/debian-packages.txt

[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "make debs: missing Debian packages: ${missing[*]}" >&2
  echo "make debs: install them with: sudo apt-get install ${missing[*]}" >&2
  [[ "${CI:-}" == "true" ]] && exit 1
  echo "make debs: the tests that need them will be skipped" >&2
  exit 0
fi

echo "make debs: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
