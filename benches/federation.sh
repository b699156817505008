#!/usr/bin/env bash
# Federation benchmark: delivery fan-out and the inbox's signed-reply rate, beside the
# machine's own RSA sign and verify rates (openssl speed) as the baseline.
#
#   benches/federation.sh                      # builds the release binary first
#   ROUNDS_BIN=path/to/rounds benches/federation.sh
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test benches/federation.sh
#   WORKERS=64 benches/federation.sh           # job_workers (default: the server's, 32)
#
# Starts `rounds serve` (SQLite, in a temporary folder removed on exit; or, with
# BENCH_DATABASE_URL, a fresh schema in that PostgreSQL database, dropped on exit) on a
# free loopback port with federation_allow_private_addresses, then runs
# benches/federation.py, which serves SERVERS (1000) receivers on loopback ports with
# FOLLOWERS (10000) followers written into the database, publishes one post with
# `rounds post publish`, and times until every shared inbox has its Create; then sends
# REPLIES (5000) replies signed ahead of time over CONCURRENCY (32) connections to the
# shared inbox and prints replies/s and p50/p99. Needs curl, sqlite3 (psql for PostgreSQL), openssl and the test tools' Python
# (tests/setup).
#
# Targets from the issue, on 2 cores: all 1,000 shared inboxes served within 1 s of
# publishing (>= 1,000 signed deliveries/s); >= 1,000 verified replies stored per second
# with p99 <= 50 ms. Printed for comparison, never asserted. Runs in about a minute.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
for tool in curl sqlite3 openssl; do
  command -v "$tool" >/dev/null || { echo "benches/federation.sh needs $tool" >&2; exit 2; }
done
"$root/tests/setup" >&2
python="${TEST_TOOLS_DIR:-$root/target/test-tools}/venv/bin/python"

if [ -n "${ROUNDS_BIN:-}" ]; then
  bin="$ROUNDS_BIN"
else
  echo "building the release binary (cargo build --release)..." >&2
  cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" --bin rounds
  bin="$root/target/release/rounds"
fi

work="$(mktemp -d -t rounds-fedbench-XXXXXX)"
server_pid=""
pg="${BENCH_DATABASE_URL:-}"
schema=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ -n "$schema" ]; then
    psql -q "$pg" -c "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^ROUNDS_' || true)
port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
if [ -n "$pg" ]; then
  command -v psql >/dev/null || { echo "BENCH_DATABASE_URL needs psql" >&2; exit 2; }
  schema="fedbench_$(openssl rand -hex 4)"
  psql -q -v ON_ERROR_STOP=1 "$pg" -c "CREATE SCHEMA $schema" >/dev/null
  case "$pg" in *\?*) separator='&' ;; *) separator='?' ;; esac
  database="$pg${separator}options=-c%20search_path%3D$schema"
  count() { psql -qtA "$database" -c "$1"; }
else
  database="sqlite://$work/rounds.db"
  count() { sqlite3 "$work/rounds.db" "$1"; }
fi
export ROUNDS_DATABASE_URL="$database" ROUNDS_DATA_DIR="$work" ROUNDS_BASE_URL="$base"
export ROUNDS_BIND="127.0.0.1:$port" ROUNDS_LOG_LEVEL=warn ROUNDS_FEDERATION_ALLOW_PRIVATE_ADDRESSES=true
if [ -n "${WORKERS:-}" ]; then export ROUNDS_JOB_WORKERS="$WORKERS"; fi

"$bin" migrate >/dev/null
printf '%s' 'a long password here' | "$bin" user add --username jane --email jane@nhs.net --password-stdin >/dev/null
"$bin" blog add --handle ceo --name "Jane Smith" --owner jane >/dev/null
"$bin" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do curl -fs "$base/healthz" >/dev/null && break; sleep 0.1; done

"$python" "$root/benches/federation.py" "$base" "$database" "$bin" "$work" | tee "$work/results.jsonl"
stored="$(count 'SELECT count(*) FROM replies')"

echo "openssl speed -seconds 3 rsa2048 (one core)..." >&2
speed="$(openssl speed -seconds 3 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $(NF-1), $NF}')"
read -r signs verifies <<<"$speed"

"$python" - "$work/results.jsonl" "$signs" "$verifies" "$stored" <<'PY'
import json, sys
fan, rep = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
signs, verifies, stored = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
print()
print(f"openssl rsa2048, one core: {signs:,.0f} signs/s, {verifies:,.0f} verifies/s (baseline)")
print(f"fan-out: {fan['fanout_served']}/{fan['fanout_servers']} shared inboxes ({fan['fanout_followers']:,} followers) "
      f"served {fan['fanout_s']:.2f} s after `rounds post publish` started "
      f"({fan['fanout_after_command_s']:.2f} s after it returned): "
      f"{fan['deliveries_per_s']:,.0f} signed deliveries/s = {fan['deliveries_per_s'] / signs:.2f} x openssl signs/s")
print(f"replies: {rep['replies_per_s']:,.0f} verified replies stored/s = {rep['replies_per_s'] / verifies:.3f} x openssl verifies/s, "
      f"p50 {rep['p50_ms']} ms, p99 {rep['p99_ms']} ms, statuses {rep['statuses']}, {stored:,} stored in all")
PY
