#!/usr/bin/env bash
# The system programs some integration tests drive (they never skip without them):
#   chromium  the status page in a real headless browser (tests/integration/test_status_page.py)
#   kcat      keyless messages as kcat sends them (tests/integration/test_input_formats.py)
# Installed with Debian's packages when missing and the machine allows it (root + apt-get);
# otherwise this says what is missing and the tests that need it fail with the same advice.
set -uo pipefail
missing=()
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
command -v kcat >/dev/null || missing+=(kcat)
[[ ${#missing[@]} == 0 ]] && exit 0
if [[ $EUID == 0 ]] && command -v apt-get >/dev/null; then
  echo "installing ${missing[*]} (Debian packages) for the integration tests"
  log=$(mktemp)
  if { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    rm -f "$log"; exit 0
  fi
  echo "WARNING: apt-get install ${missing[*]} failed; its log ends:" >&2; tail -5 "$log" >&2
else
  echo "WARNING: ${missing[*]} not installed (needs root and apt-get: apt-get install ${missing[*]})" >&2
fi
exit 0
