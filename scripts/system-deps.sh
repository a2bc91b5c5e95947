#!/usr/bin/env bash
# Debian packages the test suite drives for real: headless Chromium (browser tests) and Dovecot (a real
# IMAP server for the e-mail channel). Installed only when missing, and only where we may (root).
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium chromium-driver)
[ -x /usr/sbin/dovecot ] || missing+=(dovecot-imapd)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != "0" ]; then
  echo "system-deps: missing ${missing[*]}; install them with apt-get (as root) to run every test" >&2
  exit 0
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
