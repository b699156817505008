# Shared by the benchmarks (benches/http.sh, benches/mail.sh, benches/newsletter.sh): the
# release binary, a work folder and process clean-up (add a started process's pid to
# `pids`), and an SMTP sink on loopback for the mail ones. Source it after setting `root`
# and `needs` (the tools the caller needs besides python3); it sets `bin`, `work` and
# `pids`.
#
# The sink is postfix's `smtp-sink` if it is on the PATH (Debian: apt-get install
# postfix; started here on 127.0.0.1 only), else the aiosmtpd peer of the tests
# (target/test-tools/venv, made by tests/setup), which is Python and so the slower party:
# the figure is then the sink's as much as ours.

for tool in python3 ${needs:-}; do
  if ! command -v "$tool" >/dev/null; then
    echo "$0 needs $tool. On Debian or Ubuntu: apt-get install $tool" >&2
    exit 2
  fi
done

if [ -n "${ROUNDS_BIN:-}" ]; then
  bin="$ROUNDS_BIN"
else
  echo "building the release binary (cargo build --release)..." >&2
  cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" --bin rounds
  bin="$root/target/release/rounds"
fi
[ -x "$bin" ] || { echo "no rounds binary at $bin" >&2; exit 2; }

work="$(mktemp -d -t rounds-bench-XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^ROUNDS_' || true)

now_ms() { date +%s%3N; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Starts the SMTP sink; sets `sink` (its name) and `smtp_port`.
start_sink() {
  smtp_port="$(free_port)"
  if command -v smtp-sink >/dev/null; then
    sink="postfix smtp-sink"
    # It refuses to run as root without an account to drop to.
    local as_user=()
    [ "$(id -u)" = 0 ] && as_user=(-u nobody)
    smtp-sink "${as_user[@]}" -c "127.0.0.1:$smtp_port" 1000 >/dev/null &
    pids+=("$!")
  else
    sink="aiosmtpd peer (Python)"
    local python="${TEST_TOOLS_DIR:-$root/target/test-tools}/venv/bin/python"
    [ -x "$python" ] || { echo "no SMTP sink: install postfix or run tests/setup" >&2; exit 2; }
    "$python" "$root/tests/tools/smtp_peer.py" >"$work/peer.json" </dev/null &
    pids+=("$!")
    for _ in $(seq 50); do [ -s "$work/peer.json" ] && break; sleep 0.1; done
    smtp_port="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["smtp"])' "$work/peer.json")"
  fi
  for _ in $(seq 50); do
    python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$smtp_port" 2>/dev/null && break
    sleep 0.1
  done
}
