#!/usr/bin/env bash
# Installs what the test suite needs and a fresh Debian or Ubuntu machine
# lacks: redis-server (tests start their own on free ports), Debian's
# python3-websockets (the README's Python agent runs in a test) and
# chromium (the dashboard's browser test).
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
/usr/bin/python3 -c 'import websockets' >/dev/null 2>&1 || missing+=(python3-websockets)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "the tests need: ${missing[*]}; install them (apt-get install -y ${missing[*]}) and run again" >&2
		exit 1
	fi
	sudo="sudo"
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "the tests need: ${missing[*]}; install them with your package manager and run again" >&2
	exit 1
fi
echo "installing ${missing[*]} for the tests" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}"
