#!/usr/bin/env bash
# Newsletter benchmark: a post mailed to SUBSCRIBERS (100,000) confirmed subscribers of
# one blog, end to end. Seeds the subscribers straight into a fresh SQLite database (one
# statement), starts the release server with an SMTP sink on loopback (benches/lib.sh),
# publishes a post with `rounds post publish`, and prints the time to enqueue (the
# fan-out done: every reader has a `newsletter_email` job), messages per second until
# every email job is finished (each message is recorded as sent just before its final
# "."), and the server's peak resident memory.
#
#   benches/newsletter.sh                      # builds the release binary first
#   ROUNDS_BIN=path/to/rounds benches/newsletter.sh
#
# Knobs (environment): SUBSCRIBERS (100000), WORKERS (job_workers, 32).
# Prints figures, asserts nothing: run on purpose, not in CI. Compare with benches/mail.sh
# from the same session (plain, pre-rendered email jobs through the same sink).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
subscribers="${SUBSCRIBERS:-100000}"
workers="${WORKERS:-32}"
needs="sqlite3"
source "$root/benches/lib.sh"

port="$(free_port)"
export ROUNDS_DATA_DIR="$work" ROUNDS_DATABASE_URL="sqlite://$work/rounds.db"
export ROUNDS_BIND="127.0.0.1:$port" ROUNDS_BASE_URL="http://127.0.0.1:$port"
export ROUNDS_LOG_LEVEL=warn ROUNDS_JOB_WORKERS="$workers"
export ROUNDS_MAIL_FROM="Benchmark Trust blogs <blogs@bench.example>"
count() { sqlite3 -cmd '.timeout 5000' "$work/rounds.db" "$1"; }

"$bin" migrate >/dev/null
printf '%s' 'a long password here' | "$bin" user add --username jane --email jane@nhs.net --password-stdin >/dev/null
"$bin" blog add --handle ceo --name "Jane Smith" --owner jane \
  --title "Chief Executive, Benchmark NHS Foundation Trust" >/dev/null
count "
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $subscribers)
INSERT INTO newsletter_subscribers (id, email, status, paused, lawful_basis, created_at, confirmed_at, updated_at)
SELECT i, printf('staff%06d@bench.example', i), 'confirmed', 0, 'benchmark', datetime('now'), datetime('now'), datetime('now') FROM n;
INSERT INTO newsletter_subscriptions (subscriber_id, blog_id, cadence, status, created_at)
SELECT id, (SELECT id FROM blogs WHERE handle = 'ceo'), 'each_post', 'active', datetime('now') FROM newsletter_subscribers;"

start_sink
ROUNDS_SMTP_URL="smtp://127.0.0.1:$smtp_port?tls=none" "$bin" serve >"$work/server.log" 2>&1 &
server=$!
pids+=("$server")
for _ in $(seq 100); do curl -fs "$ROUNDS_BASE_URL/healthz" >/dev/null && break; sleep 0.1; done

body="$(python3 -c 'print("Proud of the team on ward 7 today. " * 20 + "\n\n> What a week.\n\nThank you all.")')"
start="$(now_ms)"
printf '%s' "$body" | "$bin" post publish --blog ceo --author jane --title "Winter plan" - >/dev/null
enqueued=""
while :; do
  if [ -z "$enqueued" ] && [ "$(count "SELECT count(*) FROM newsletter_sends WHERE finished_at IS NOT NULL")" = "1" ]; then
    enqueued=$(($(now_ms) - start))
  fi
  if [ -n "$enqueued" ] && [ "$(count "SELECT count(*) FROM jobs WHERE kind = 'newsletter_email' AND status IN ('pending', 'running')")" = "0" ]; then
    break
  fi
  kill -0 "$server" 2>/dev/null || { echo "the server died:" >&2; cat "$work/server.log" >&2; exit 1; }
  sleep 0.2
done
elapsed=$(($(now_ms) - start))
peak="$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$server/status")"
done_jobs="$(count "SELECT count(*) FROM jobs WHERE kind = 'newsletter_email' AND status = 'done'")"
payload="$(count "SELECT avg(length(payload)) FROM jobs WHERE kind = 'newsletter_email'")"
db_mb="$(du -m "$work/rounds.db" | cut -f1)"
python3 - "$subscribers" "$done_jobs" "$enqueued" "$elapsed" "$peak" "$payload" "$db_mb" "$sink" <<'PY'
import sys
n, done, enq, ms, kb, payload, db, sink = sys.argv[1:]
n, done, enq, ms, kb = int(n), int(done), int(enq), int(ms), int(kb)
print(f"rounds newsletter benchmark: {n:,} subscribers, one post, SMTP sink: {sink}")
print(f"enqueue (fan-out done)  {enq / 1000:7.1f} s  ({n / (enq / 1000):,.0f} jobs/s, {float(payload):.0f}-byte payloads, database {db} MB)")
print(f"end to end              {ms / 1000:7.1f} s  {done / (ms / 1000):,.0f} msg/s ({done:,} sent)")
print(f"server peak RSS         {kb / 1024:7.1f} MB")
print("targets (issue 4, 2 cores): >= 2,000 msg/s with SQLite, peak RSS <= 150 MB")
PY
