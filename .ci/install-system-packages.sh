#!/bin/sh
# Installs what the pulumi-netns lab hosts (provider/testing/prerequisites.ts) need on a
# fresh Debian/Ubuntu machine. Idempotent: apt is skipped when everything is present,
# so it is cheap to run at the start of every CI job.
set -eu

PACKAGES="iproute2 iptables openssh-server openssh-client iputils-ping nftables procps util-linux sudo passwd"

missing=""
for pkg in $PACKAGES; do
  # "install ok installed" is dpkg's status for a fully installed package.
  if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]; then
    missing="$missing $pkg"
  fi
done

if [ -z "$missing" ]; then
  echo "system packages: all present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi

echo "system packages: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086 # the package list is meant to be split into words
$SUDO apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
echo "system packages: done"
