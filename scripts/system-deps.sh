#!/usr/bin/env bash
# System packages the tests use, from Debian's archive, installed only when missing:
# chromium (the web UI browser test; Playwright drives it, never downloads a browser)
# nginx (the benchmark's null server, exercised by a smoke test), and unshare + ip (a network
# namespace for the one test that must meet "nothing listens on localhost:8000").
set -euo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v unshare >/dev/null || missing+=(util-linux)
command -v ip >/dev/null || [ -x /usr/sbin/ip ] || missing+=(iproute2)
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${missing[*]} with apt-get" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
