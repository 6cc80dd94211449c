#!/usr/bin/env bash
# Install the servers of the production-shaped e2e step (make e2e-prod) from Debian's packages when
# they are missing: PostgreSQL (the metadata database) and Redis (the Celery broker). The tests start
# their own throw-away instances on free ports; the packages' system services are not used.
set -euo pipefail

missing=()
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || command -v postgres >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
[ "$(id -u)" -ne 0 ] || id postgres >/dev/null 2>&1 || missing+=(postgresql)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "e2e-prod needs ${missing[*]}: run 'apt-get install -y ${missing[*]}' as root" >&2
    exit 1
fi
echo "Installing ${missing[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
