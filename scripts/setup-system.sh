#!/usr/bin/env bash
# Installs the Debian packages kubenetmon's tests, lab and demo use, if any is missing. Needs root.
set -euo pipefail
packages=(iproute2 nftables iptables conntrack socat ethtool procps)
commands=(ip nft iptables conntrack socat ethtool sysctl)
missing=0
for c in "${commands[@]}"; do command -v "$c" >/dev/null 2>&1 || missing=1; done
[ "$missing" = 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "setup-system: missing some of: ${commands[*]}; run as root so apt-get can install ${packages[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
