#!/usr/bin/env bash
# Mail benchmark: queues N email jobs (multipart HTML + text, about 2 KB each) in a fresh
# SQLite database, runs `rounds worker` until every job is done, and prints messages per
# second, the time to enqueue, and the worker's peak resident memory. Twice: first with no
# SMTP server (messages written as .eml files: the queue's own cost, the baseline), then
# through an SMTP sink on loopback (every message committed before its final ".", see
# src/mail/smtp.rs), with the ratio between the two.
#
#   benches/mail.sh                      # builds the release binary first
#   ROUNDS_BIN=path/to/rounds benches/mail.sh
#
# Knobs (environment): MESSAGES (20000), WORKERS (job_workers, 32), RATE
# (mail_rate_per_second, 0 = unlimited). The SMTP sink: see benches/lib.sh.
#
# Prints figures, asserts nothing: run on purpose, not in CI. Everything lives in a
# temporary folder removed on exit; the processes started here are stopped however the
# script ends.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
messages="${MESSAGES:-20000}"
workers="${WORKERS:-32}"
rate="${RATE:-0}"

needs="sqlite3"
source "$root/benches/lib.sh"

export ROUNDS_LOG_LEVEL=warn
export ROUNDS_BASE_URL="http://127.0.0.1:8080"
export ROUNDS_JOB_WORKERS="$workers"
export ROUNDS_MAIL_RATE_PER_SECOND="$rate"
export ROUNDS_MAIL_FROM="Benchmark Trust blogs <blogs@bench.example>"

# Fills a fresh database with $messages email jobs; prints the milliseconds it took.
enqueue() {
  local data="$1"
  ROUNDS_DATA_DIR="$data" "$bin" migrate >/dev/null
  local start
  start="$(now_ms)"
  python3 - "$data/rounds.db" "$messages" <<'EOF'
import datetime, json, sqlite3, sys
db, n = sys.argv[1], int(sys.argv[2])
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
text = "Proud of the team on ward 7 today. " * 20
html = "<table role=\"presentation\"><tr><td><p>" + text + "</p></td></tr></table>"
conn = sqlite3.connect(db)
with conn:
    conn.executemany(
        "INSERT INTO jobs (kind, payload, idempotency_key, status, attempts, max_attempts,"
        " run_at, created_at, updated_at) VALUES ('email', ?, ?, 'pending', 0, 10, ?, ?, ?)",
        (
            (
                json.dumps({"to": f"staff{i:06}@bench.example", "subject": f"Ward round {i}",
                            "text": text, "html": html, "reply_to": None, "bulk": {
                                "list_id": "Bench <bench.bench.example>",
                                "unsubscribe_url": f"https://bench.example/u/{i}",
                                "unsubscribe_mailto": f"mailto:u@bench.example?subject={i}"}}),
                f"bench:{i}", now, now, now,
            )
            for i in range(n)
        ),
    )
EOF
  echo $(($(now_ms) - start))
}

# Runs `rounds worker` on the database until no email job is left; prints
# "milliseconds peak_rss_kb".
drain() {
  local data="$1"
  shift
  local start pid peak=0 left
  start="$(now_ms)"
  env ROUNDS_DATA_DIR="$data" "$@" "$bin" worker >"$data/worker.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  while :; do
    left="$(sqlite3 -cmd '.timeout 5000' "$data/rounds.db" \
      "SELECT count(*) FROM jobs WHERE kind = 'email' AND status IN ('pending', 'running')")"
    [ "$left" = "0" ] && break
    kill -0 "$pid" 2>/dev/null || { echo "the worker died:" >&2; cat "$data/worker.log" >&2; exit 1; }
    sleep 0.2
  done
  local elapsed=$(($(now_ms) - start))
  peak="$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status")"
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local failed
  failed="$(sqlite3 "$data/rounds.db" "SELECT count(*) FROM jobs WHERE kind = 'email' AND status <> 'done'")"
  [ "$failed" = "0" ] || { echo "$failed jobs did not finish as done" >&2; exit 1; }
  echo "$elapsed $peak"
}

report() {
  local name="$1" enqueue_ms="$2" elapsed_ms="$3" peak_kb="$4"
  python3 - "$name" "$messages" "$enqueue_ms" "$elapsed_ms" "$peak_kb" <<'EOF'
import sys
name, n, enq, ms, kb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
print(f"{name:<28} {n / (ms / 1000):>9.0f} msg/s  {ms / 1000:>7.1f} s  enqueue {enq / 1000:>5.1f} s  peak RSS {kb / 1024:>6.1f} MB")
EOF
}

echo "rounds mail benchmark: $messages messages, $workers workers, rate limit $rate/s (0 = none)"

# Baseline: no SMTP, .eml files.
files="$work/files"
mkdir -p "$files"
enqueue_ms="$(enqueue "$files")"
read -r files_ms files_kb < <(drain "$files")
report "files (no SMTP, baseline)" "$enqueue_ms" "$files_ms" "$files_kb"

# Through the sink.
start_sink
smtp="$work/smtp"
mkdir -p "$smtp"
enqueue_ms="$(enqueue "$smtp")"
read -r smtp_ms smtp_kb < <(drain "$smtp" ROUNDS_SMTP_URL="smtp://127.0.0.1:$smtp_port?tls=none")
report "SMTP ($sink)" "$enqueue_ms" "$smtp_ms" "$smtp_kb"
python3 -c 'import sys; print(f"SMTP / files throughput: {int(sys.argv[2]) / int(sys.argv[1]):.2f}")' "$smtp_ms" "$files_ms"
echo "targets (issue 4, 2 cores, a 100,000-subscriber digest): >= 2,000 msg/s, peak RSS <= 150 MB"
