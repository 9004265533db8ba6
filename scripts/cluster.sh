#!/usr/bin/env bash
# Several Gatehouse instances behind HAProxy, sharing one PostgreSQL: the recipe of README
# "Several machines", on loopback, in a temporary folder, and what it guarantees, checked.
#
#  1. A throwaway PostgreSQL cluster (Debian's /usr/lib/postgresql/*/bin; as the system user
#     gatehouse-pg when run as root, which PostgreSQL requires), password auth over TCP.
#  2. --instances gatehouse-server instances on their own ports, --store postgresql, the password
#     from a 0600 file, each with its own --node-name.
#  3. HAProxy (Debian's) in TCP mode, round robin, health checks of each instance's /readyz
#     (--metrics-address) every 500 ms; with
#     `send-proxy-v2` when the server supports --proxy-protocol (--proxy auto, the default), or
#     forced on/off with --proxy v2|none.
#  4. Failover run: --senders concurrent `gatehouse send` clients through HAProxy, each sending
#     unique messages in files of --batch lines and recording each ACK, for --seconds; halfway,
#     one instance is killed (SIGKILL). Senders whose connection broke reconnect through HAProxy
#     and go on with new messages (not resending: an unanswered message may have been stored).
#     Prints messages per second, reconnects, and whether every acknowledged message is in the
#     table exactly once (exit status 1 if not).
#     With --streams: each sender's file goes through a stream (`send --stream`, one stream per
#     file, --retry-for 30): a sender whose connection broke reconnects through HAProxy by itself,
#     resumes on another instance from that instance's OK STREAM, and resends what was not
#     acknowledged; then every line of every file must be in the table exactly once, under its
#     own number (checked too), not only every acknowledged one.
#  5. With --compare: `gatehouse bench messages` against one instance directly, --store postgresql
#     against --store journal (--fsync always), alternating, --rounds each: msgs/s, server CPU
#     per message (user+sys of the server process over the run), rows per transaction. With
#     --streams the load goes through one stream per connection (`bench messages --streams`).
#
# Usage: scripts/cluster.sh [--instances N] [--seconds S] [--senders N] [--batch N]
#                           [--proxy auto|v2|none] [--streams] [--compare] [--rounds N] [--bin-dir DIR]
#                           [--dir DIR] [--keep]
#   --bin-dir DIR  use gatehouse-server and gatehouse from DIR (default: build them, release)
# Needs: postgresql, haproxy, libpq-dev (for the build), python3 (free ports), taskset.
set -euo pipefail
cd "$(dirname "$0")/.."

instances=3
seconds=10
senders=12
batch=2000
proxy=auto
compare=0
streams=0
rounds=2
bindir=""
dir=${TMPDIR:-/tmp}
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --instances) instances="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --senders) senders="$2"; shift 2 ;;
        --batch) batch="$2"; shift 2 ;;
        --proxy) proxy="$2"; shift 2 ;;
        --compare) compare=1; shift ;;
        --streams) streams=1; shift ;;
        --rounds) rounds="$2"; shift 2 ;;
        --bin-dir) bindir="$2"; shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,38p' "$0"; exit 0 ;;
        *) echo "cluster.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$instances" -ge 2 ] || { echo "cluster.sh: --instances must be at least 2 (one is killed)" >&2; exit 2; }
log() { echo "cluster: $*" >&2; }

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$pgbin" ] && [ -x "$pgbin/postgres" ] || { log "needs Debian's postgresql (apt-get install postgresql)"; exit 1; }
command -v haproxy >/dev/null || { log "needs haproxy (apt-get install haproxy)"; exit 1; }
command -v python3 >/dev/null || { log "needs python3"; exit 1; }

if [ -z "$bindir" ]; then
    log "building gatehouse-server and gatehouse (release)"
    swift build -c release --product gatehouse-server >/dev/null
    swift build -c release --product gatehouse >/dev/null
    bindir=$(swift build -c release --show-bin-path)
fi
server_bin=$bindir/gatehouse-server
client_bin=$bindir/gatehouse

if [ "$proxy" = auto ]; then
    if "$server_bin" serve --help 2>&1 | grep -q -- '--proxy-protocol'; then proxy=v2; else proxy=none; fi
fi
case "$proxy" in v2|none) ;; *) log "--proxy must be auto, v2 or none"; exit 2 ;; esac

work=$(mktemp -d "$dir/gatehouse-cluster.XXXXXX")
chmod 755 "$work"
pids=()
pg_pid=""
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    [ -n "$pg_pid" ] && kill -QUIT "$pg_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    if [ "$keep" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }

# 1. PostgreSQL, as a non-root user.
as_pg=()
if [ "$(id -u)" = 0 ]; then
    id gatehouse-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin gatehouse-pg
    as_pg=(setpriv --reuid=gatehouse-pg --regid=gatehouse-pg --init-groups --)
fi
mkdir -p "$work/pg"
pgpass=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
printf '%s\n' "$pgpass" >"$work/pg/pwfile"
[ "$(id -u)" = 0 ] && chown -R gatehouse-pg "$work/pg"
"${as_pg[@]}" "$pgbin/initdb" -D "$work/pg/data" -U gatehouse --pwfile "$work/pg/pwfile" --auth-local=trust \
    --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; exit 1; }
pgport=$(free_port)
"${as_pg[@]}" "$pgbin/postgres" -D "$work/pg/data" -p "$pgport" -k "$work/pg" -c listen_addresses=127.0.0.1 \
    -c max_connections=50 >"$work/postgres.log" 2>&1 &
pg_pid=$!
for _ in $(seq 200); do "$pgbin/pg_isready" -q -h "$work/pg" -p "$pgport" && break; sleep 0.1; done
"$pgbin/pg_isready" -q -h "$work/pg" -p "$pgport" || { log "postgres did not start"; cat "$work/postgres.log" >&2; exit 1; }
psql_() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$work/pg" -p "$pgport" -U gatehouse -d postgres "$@"; }
pgurl="postgresql://gatehouse@127.0.0.1:$pgport/postgres"
printf '%s\n' "$pgpass" >"$work/pg-password"
chmod 600 "$work/pg-password"
log "postgresql $(psql_ -c 'SHOW server_version') on 127.0.0.1:$pgport (fsync on, synchronous_commit on)"

bash scripts/gen-certs.sh --out "$work/pki" --quiet
"$server_bin" token add bench --tokens "$work/tokens" >"$work/token" 2>/dev/null
chmod 600 "$work/token"

# 2. The instances.
proxy_args=()
[ "$proxy" = v2 ] && proxy_args=(--proxy-protocol --proxy-from 127.0.0.3/32)
declare -a ports
declare -A mports
declare -A server_pids
start_instance() {
    local i=$1 port=$2 store=${3:-postgresql}
    "$server_bin" serve --host 127.0.0.1 --port "$port" --workers 1 --cert "$work/pki/server.crt" \
        --key "$work/pki/server.key" --tokens "$work/tokens" --journal "$work/journal-$i.jsonl" \
        --store "$store" --postgresql "$pgurl" --postgresql-password-file "$work/pg-password" \
        --node-name "node-$i" --metrics-address "127.0.0.1:${mports[$i]:-0}" "${proxy_args[@]}" \
        >/dev/null 2>"$work/server-$i.log" &
    local pid=$!
    disown "$pid"  # killed on purpose below: no "Killed" job notice
    pids+=("$pid")
    server_pids[$i]=$pid
    for _ in $(seq 200); do
        grep -q listening "$work/server-$i.log" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    log "instance $i did not start:"; cat "$work/server-$i.log" >&2; exit 1
}
for i in $(seq 1 "$instances"); do
    ports[$i]=$(free_port)
    mports[$i]=$(free_port)
    start_instance "$i" "${ports[$i]}"
done
for _ in $(seq 100); do
    [ "$(grep -l 'postgresql connected' "$work"/server-*.log 2>/dev/null | wc -l)" -ge "$instances" ] && break
    sleep 0.1
done

# 3. HAProxy.
hport=$(free_port)
send_proxy=""
[ "$proxy" = v2 ] && send_proxy="send-proxy-v2"
{
    echo "global"
    echo "    maxconn 2000"
    echo "defaults"
    echo "    mode tcp"
    echo "    timeout connect 2s"
    echo "    timeout client 120s"
    echo "    timeout server 120s"
    echo "frontend gatehouse"
    echo "    bind 127.0.0.1:$hport"
    echo "    default_backend instances"
    echo "backend instances"
    echo "    balance roundrobin"
    # Health: the instance's /readyz (503 while its database is unreachable, or it drains).
    echo "    option httpchk GET /readyz"
    # HAProxy connects to the instances from 127.0.0.3, the clients from 127.0.0.1: the peer
    # column tells which address reached the server (the client's only through the PROXY header).
    echo "    source 127.0.0.3"
    for i in $(seq 1 "$instances"); do
        echo "    server node-$i 127.0.0.1:${ports[$i]} check port ${mports[$i]} inter 500ms fall 2 rise 2 $send_proxy"
    done
} >"$work/haproxy.cfg"
haproxy -c -f "$work/haproxy.cfg" >/dev/null
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=("$!")
sleep 1
log "haproxy on 127.0.0.1:$hport -> $instances instances (PROXY protocol: $proxy)"

# 4. The failover run.
mkdir -p "$work/msgs" "$work/acks"
: >"$work/reconnects"
: >"$work/streams-done"
: >"$work/stream-failures"
sender() {
    local k=$1 end=$2 round=0 rc
    while [ "$(now_ms)" -lt "$end" ]; do
        local f="$work/msgs/s$k-r$round"
        seq -f "s$k-r$round-m%.0f" 1 "$batch" >"$f"
        rc=0
        local stream_args=()
        [ "$streams" = 1 ] && stream_args=(--stream "s$k-r$round" --retry-for 30)
        "$client_bin" send --host 127.0.0.1 --port "$hport" --ca "$work/pki/ca.crt" --server-name localhost \
            --user bench --token-file "$work/token" --file "$f" --window 32 "${stream_args[@]}" \
            >"$work/acks/s$k-r$round" 2>"$work/acks/s$k-r$round.err" || rc=$?
        if [ "$streams" = 1 ]; then
            # The client reconnects by itself; its summary line counts the reconnects.
            local n
            n=$(grep -o '[0-9]* reconnects' "$work/acks/s$k-r$round.err" | tail -n 1 | cut -d' ' -f1)
            for _ in $(seq 1 "${n:-0}"); do echo "s$k-r$round reconnected" >>"$work/reconnects"; done
            [ "$rc" = 0 ] && echo "s$k-r$round" >>"$work/streams-done"
            [ "$rc" = 0 ] || echo "s$k-r$round rc=$rc" >>"$work/stream-failures"
        elif [ "$rc" != 0 ]; then
            echo "s$k-r$round rc=$rc" >>"$work/reconnects"
            sleep 0.2
        fi
        round=$((round + 1))
    done
}
t0=$(now_ms)
end=$((t0 + seconds * 1000))
sender_pids=()
for k in $(seq 1 "$senders"); do
    sender "$k" "$end" &
    sender_pids+=("$!")
done
sleep "$(python3 -c "print($seconds / 2)")"
victim=$((instances))
log "killing instance $victim (SIGKILL) mid-run"
kill -KILL "${server_pids[$victim]}"
for p in "${sender_pids[@]}"; do wait "$p" || true; done
t1=$(now_ms)

# Acknowledged messages: "ACK n" answers the n-th line of the file sent (send prints them in order).
for a in "$work"/acks/s*-r*; do
    case "$a" in *.err) continue ;; esac
    awk 'NR==FNR { m[FNR] = $0; next } /^ACK / { print m[$2] }' "$work/msgs/$(basename "$a")" "$a"
done >"$work/acknowledged.txt"
acked=$(wc -l <"$work/acknowledged.txt")
psql_ -c "CREATE TEMP TABLE acked (text text)" -c "\\copy acked FROM '$work/acknowledged.txt'" \
    -c "SELECT (SELECT count(*) FROM acked),
               (SELECT count(*) FROM acked a WHERE NOT EXISTS (SELECT 1 FROM gatehouse_messages g WHERE g.text = a.text)),
               (SELECT count(*) FROM (SELECT g.text FROM gatehouse_messages g JOIN acked a USING (text)
                                      GROUP BY g.text HAVING count(*) > 1) d),
               (SELECT count(*) FROM gatehouse_messages)" >"$work/check.txt"
IFS='|' read -r loaded missing doubled rows <"$work/check.txt"
reconnects=$(wc -l <"$work/reconnects")
elapsed=$(python3 -c "print(f'{($t1 - $t0) / 1000:.1f}')")
rate=$(python3 -c "print(f'{$acked / (($t1 - $t0) / 1000):.0f}')")
echo "failover run: $instances instances behind haproxy (PROXY protocol: $proxy), $senders senders, ${elapsed}s, instance $victim killed at $((seconds / 2))s"
echo "  acknowledged: $acked  ($rate msgs/s)   rows in the table: $rows (unanswered messages may be stored too)"
echo "  reconnects: $reconnects (senders whose connection broke or could not connect, then went on through haproxy)"
echo "  rows per instance: $(psql_ -c "SELECT string_agg(node || '=' || n, ' ' ORDER BY node) FROM (SELECT node, count(*) n FROM gatehouse_messages GROUP BY node) x")"
status=0
if [ "$loaded" = "$acked" ] && [ "$missing" = 0 ] && [ "$doubled" = 0 ] && [ "$acked" -gt 0 ]; then
    echo "  every acknowledged message is in the table exactly once: yes"
else
    echo "  every acknowledged message is in the table exactly once: NO (missing $missing, stored twice $doubled)"
    status=1
fi
if [ "$streams" = 1 ]; then
    # Every line of every stream whose send finished is a row, once, under its own number
    # (line k of s1-r0 is "s1-r0-mk", number k); a send that gave up is a failure too.
    psql_ -c "CREATE TEMP TABLE done (stream text)" -c "\\copy done FROM '$work/streams-done'" \
        -c "SELECT (SELECT count(*) FROM done),
                   (SELECT count(*) FROM done d WHERE (SELECT count(*) FROM gatehouse_messages g
                                                       WHERE g.stream = d.stream) <> $batch),
                   (SELECT count(*) FROM gatehouse_messages WHERE stream IS NOT NULL
                                                             AND text <> stream || '-m' || seq)" >"$work/streams.txt"
    IFS='|' read -r done_streams incomplete misnumbered <"$work/streams.txt"
    failed=$(wc -l <"$work/stream-failures")
    echo "  streams: $done_streams sends finished ($failed gave up), each resumed where the table said after a reconnect"
    if [ "$incomplete" = 0 ] && [ "$misnumbered" = 0 ] && [ "$failed" = 0 ] && [ "$done_streams" -gt 0 ]; then
        echo "  every line of every stream is in the table exactly once, under its number: yes"
    else
        echo "  every line of every stream is in the table exactly once, under its number: NO ($incomplete streams without exactly $batch rows, $misnumbered rows under another number, $failed sends gave up)"
        status=1
    fi
fi
peers=$(psql_ -c "SELECT string_agg(DISTINCT regexp_replace(peer, ':[0-9]+$', ''), ' ') FROM gatehouse_messages")
echo "  peer addresses in the table: $peers (clients 127.0.0.1, haproxy 127.0.0.3)"
if [ "$proxy" = v2 ] && [ "$peers" != 127.0.0.1 ]; then
    echo "  the PROXY header did not carry the clients' address"
    status=1
fi
for i in $(seq 1 "$((instances - 1))"); do kill -TERM "${server_pids[$i]}" 2>/dev/null || true; done
for i in $(seq 1 "$((instances - 1))"); do
    for _ in $(seq 200); do kill -0 "${server_pids[$i]}" 2>/dev/null || break; sleep 0.05; done
    line=$(grep 'gatehouse stopped' "$work/server-$i.log" | tail -n 1)
    rec=$(grep -o 'records=[0-9]*' <<<"$line" | cut -d= -f2)
    fl=$(grep -o 'flushes=[0-9]*' <<<"$line" | cut -d= -f2)
    if [ -n "$rec" ] && [ -n "$fl" ] && [ "$fl" -gt 0 ]; then
        echo "  node-$i: $rec rows in $fl transactions ($((rec / fl)) rows per transaction)"
    fi
done

# 5. Store against store, one instance, same run.
if [ "$compare" = 1 ]; then
    tick=$(getconf CLK_TCK)
    # CPU ticks of the postmaster and every backend and helper it forked.
    db_ticks() {
        local total=0 p
        for p in "$pg_pid" $(pgrep -P "$pg_pid" || true); do
            total=$((total + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
        done
        echo "$total"
    }
    # With --streams: each store plain and through streams, in the same rounds.
    loads=(plain)
    [ "$streams" = 1 ] && loads=(plain streams)
    echo "compare (one instance, 1 worker, bench messages ${loads[*]}: 64 connections x window 16 x 64 B, ${seconds}s, $rounds rounds each):"
    for r in $(seq 1 "$rounds"); do
        for config in "${loads[@]/#/postgresql-}" "${loads[@]/#/journal-}"; do
            store=${config%%-*}
            load=${config#*-}
            bench_streams=()
            [ "$load" = streams ] && bench_streams=(--streams)
            i="c-$config-$r"
            port=$(free_port)
            saved=("${proxy_args[@]}")
            proxy_args=()
            start_instance "$i" "$port" "$store"
            proxy_args=("${saved[@]}")
            [ "$store" = postgresql ] && for _ in $(seq 100); do grep -q 'postgresql connected' "$work/server-$i.log" && break; sleep 0.1; done
            pid=${server_pids[$i]}
            c0=$(awk '{print $14+$15}' "/proc/$pid/stat")
            d0=$(db_ticks)
            "$client_bin" bench messages --host 127.0.0.1 --port "$port" --ca "$work/pki/ca.crt" --server-name localhost \
                --user bench --token-file "$work/token" --connections 64 --window 16 --size 64 --duration "$seconds" \
                "${bench_streams[@]}" --json >"$work/bench-$i.json" 2>/dev/null || true
            c1=$(awk '{print $14+$15}' "/proc/$pid/stat")
            d1=$(db_ticks)
            kill -TERM "$pid"
            for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
            python3 - "$config" "$r" "$work/bench-$i.json" "$((c1 - c0))" "$tick" "$work/server-$i.log" "$((d1 - d0))" <<'PY'
import json, re, sys
store, r, path, ticks, tick, log, dbticks = sys.argv[1:]
b = json.load(open(path))
acked = int(b.get("acknowledged", 0))
rate = float(b.get("rate_per_s", 0))
cpu_us = int(ticks) / int(tick) * 1e6 / acked if acked else float("nan")
db_us = int(dbticks) / int(tick) * 1e6 / acked if acked else float("nan")
text = open(log).read()
rec = re.findall(r"records=(\d+)", text)
fl = re.findall(r"flushes=(\d+)", text)
per = f"{int(rec[-1]) / int(fl[-1]):.0f}" if rec and fl and int(fl[-1]) else "?"
db = f"  + {db_us:4.1f} us PostgreSQL CPU/msg" if store.startswith("postgresql") else " " * 32
with open(path + ".row", "w") as f:
    f.write(f"{store}\t{rate}\t{cpu_us}\t{db_us}\n")
print(f"  {store:18s} round {r}: {rate:8.0f} msgs/s  {cpu_us:4.1f} us server CPU/msg{db}  {per:>4s} rows per transaction (or flush)")
PY
        done
    done
    cat "$work"/bench-c-*.json.row >"$work/compare.tsv"
    python3 - "$work/compare.tsv" <<'PY'
import statistics as st, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
def med(config, col):
    v = [float(r[col]) for r in rows if r[0] == config]
    return st.median(v) if v else float("nan")
configs = sorted({r[0] for r in rows})
print("  medians:")
for c in configs:
    db = f"  + {med(c, 3):4.1f} us PostgreSQL CPU/msg" if c.startswith("postgresql") else ""
    print(f"    {c:18s} {med(c, 1):8.0f} msgs/s  {med(c, 2):4.2f} us server CPU/msg{db}")
def ratio(a, b, what):
    if a in configs and b in configs:
        print(f"    {a} / {b}: msgs/s {med(a, 1) / med(b, 1):.2f}, server CPU/msg {med(a, 2) / med(b, 2):.2f}")
ratio("postgresql-plain", "journal-plain", "")
ratio("postgresql-streams", "journal-streams", "")
ratio("postgresql-streams", "postgresql-plain", "")
ratio("journal-streams", "journal-plain", "")
PY
fi
exit "$status"
