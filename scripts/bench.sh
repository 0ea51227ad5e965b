#!/usr/bin/env bash
# The end-to-end load benchmark (make bench): a standalone node on 127.0.0.1 (free ports), ffmpeg
# pushing a looped pre-encoded H.264 + AAC clip over RTMP (-c copy, so the encoder costs nothing),
# and estuary-bench with 100 and 300 WHEP viewers, then 200 and 1000 HTTP-FLV readers when the
# node serves HTTP-FLV (and RTMP/HLS readers when it plays them). Prints each run's summary and
# JSON; the JSON reports stay in $BENCH_OUT (default bin/bench).
#
#   BENCH_DURATION=20s BENCH_SIZE=1280x720 BENCH_BITRATE=2M bash scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${BENCH_OUT:-$ROOT/bin/bench}
DURATION=${BENCH_DURATION:-15s}
SIZE=${BENCH_SIZE:-1280x720}
BITRATE=${BENCH_BITRATE:-2M}
RAMP=${BENCH_RAMP:-100}
WHEP_COUNTS=${BENCH_WHEP-"100 300"}
FLV_COUNTS=${BENCH_FLV-"200 1000"}
RTMP_COUNTS=${BENCH_RTMP-"200"}
HLS_COUNTS=${BENCH_HLS-"100"}
mkdir -p "$OUT" bin
export CGO_ENABLED=0
go build -trimpath -o bin/estuary ./cmd/estuary
go build -trimpath -o bin/estuary-bench ./cmd/estuary-bench

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HTTP=$(freeport); RTMP=$(freeport); UDP=$(freeport); TCP=$(freeport)
cat >"$work/estuary.yaml" <<YAML
node_id: bench
log: {level: warn, format: text}
http: {listen: "127.0.0.1:$HTTP", srs_api_listen: ""}
rtmp: {listen: "127.0.0.1:$RTMP", tls_listen: ""}
webrtc: {listen_ip: 127.0.0.1, public_ips: [127.0.0.1], udp_port: $UDP, tcp_port: $TCP}
turn: {enabled: false, listen: ""}
YAML

clip=$OUT/clip-$SIZE-$BITRATE.flv
if [ ! -s "$clip" ]; then
  echo "bench: encoding a 20 s $SIZE clip at $BITRATE (once, cached in $clip)"
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=$SIZE:rate=30" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 20 \
    -c:v libx264 -preset veryfast -profile:v high -bf 0 -pix_fmt yuv420p -b:v "$BITRATE" -maxrate "$BITRATE" \
    -bufsize "$BITRATE" -g 60 -keyint_min 60 -sc_threshold 0 -c:a aac -b:a 128k -ac 2 -f flv "$clip"
fi

bin/estuary -c "$work/estuary.yaml" >"$OUT/estuary.log" 2>&1 &
EPID=$!; pids+=("$EPID")
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$HTTP/healthz" >/dev/null && break; sleep 0.1; done
ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$clip" -c copy -f flv "rtmp://127.0.0.1:$RTMP/live/bench" \
  >"$OUT/ffmpeg.log" 2>&1 &
pids+=("$!")
sleep 3

echo "bench: $(date -u +%FT%TZ) on $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p')), Go $(go env GOVERSION)"
echo "bench: node pid $EPID http 127.0.0.1:$HTTP rtmp 127.0.0.1:$RTMP; clip $SIZE $BITRATE + AAC 128k"

B=(bin/estuary-bench -stream live/bench -pid "$EPID" -ramp "$RAMP" -duration "$DURATION" -warmup 2s)
run() { # name args...
  local name=$1; shift
  echo; echo "== $name: estuary-bench $* -duration $DURATION"
  "${B[@]}" -q -json "$OUT/$name.json" "$@" || { echo "bench: $name failed"; return 0; }
  jq -c '{kinds: (.kinds | map_values({joined, join_failures, mbps, units_per_s, lost, loss_ratio, ttfm_p50: .ttfm.p50_ms, ttfm_p99: .ttfm.p99_ms})), server, client, host_udp}' "$OUT/$name.json"
}

probe=$("${B[@]}" -probe -json - -flv "http://127.0.0.1:$HTTP" -rtmp "rtmp://127.0.0.1:$RTMP" -hls "http://127.0.0.1:$HTTP" -whep "http://127.0.0.1:$HTTP" 2>/dev/null)
plays() { [ "$(jq -r ".kinds.$1.joined" <<<"$probe")" = 1 ]; }
for k in whep flv rtmp hls; do
  plays "$k" && echo "bench: $k plays" || echo "bench: $k does not play: $(jq -c ".kinds.$k.failure_reasons" <<<"$probe")"
done

for n in $WHEP_COUNTS; do run "whep-$n" -whep "http://127.0.0.1:$HTTP" -n "$n"; done
if plays flv; then for n in $FLV_COUNTS; do run "flv-$n" -flv "http://127.0.0.1:$HTTP" -n "$n"; done; fi
if plays rtmp; then for n in $RTMP_COUNTS; do run "rtmp-$n" -rtmp "rtmp://127.0.0.1:$RTMP" -n "$n"; done; fi
if plays hls; then for n in $HLS_COUNTS; do run "hls-$n" -hls "http://127.0.0.1:$HTTP" -n "$n"; done; fi
echo; echo "bench: JSON reports in $OUT"
