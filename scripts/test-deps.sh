#!/usr/bin/env bash
# Installs what the test suite needs and a fresh Debian or Ubuntu machine
# lacks: redis-server (tests start their own on free ports), Debian's
# python3-websockets (the README's Python agent runs in a test) and
# chromium (the dashboard's browser test), and Prometheus's promtool (it
# checks and unit-tests deploy/alerts.yml; Debian ships it in the
# prometheus package, whose server is kept from running).
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
/usr/bin/python3 -c 'import websockets' >/dev/null 2>&1 || missing+=(python3-websockets)
[ -x /usr/bin/chromium ] || missing+=(chromium)
prometheus=""
command -v promtool >/dev/null 2>&1 || prometheus=prometheus
[ ${#missing[@]} -eq 0 ] && [ -z "$prometheus" ] && exit 0
all=("${missing[@]}" $prometheus)

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "the tests need: ${all[*]}; install them (apt-get install -y ${all[*]}) and run again" >&2
		exit 1
	fi
	sudo="sudo"
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "the tests need: ${all[*]} (for prometheus: its promtool); install them with your package manager and run again" >&2
	exit 1
fi
echo "installing ${all[*]} for the tests" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
[ ${#missing[@]} -eq 0 ] || $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}"
[ -n "$prometheus" ] || exit 0

# The prometheus package would start a Prometheus server on :9090 (and its
# recommended node exporter on :9100); the tests need only promtool. A
# policy-rc.d that denies every start keeps the server from starting while
# the package installs, and its service is then disabled, so that it does
# not start at the next boot either.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	trap '$sudo rm -f "$policy"' EXIT
	printf '#!/bin/sh\n# scripts/test-deps.sh: no service starts while prometheus installs\nexit 101\n' | $sudo tee "$policy" >/dev/null
	$sudo chmod 755 "$policy"
fi
$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends prometheus
if command -v systemctl >/dev/null 2>&1; then
	$sudo systemctl disable prometheus.service >/dev/null 2>&1 || true
	if [ -d /run/systemd/system ]; then
		$sudo systemctl stop prometheus.service >/dev/null 2>&1 || true
	fi
fi
if command -v update-rc.d >/dev/null 2>&1; then
	$sudo update-rc.d prometheus disable >/dev/null 2>&1 || true
fi
