#!/usr/bin/env bash
# The end-to-end load benchmark (make bench): a standalone node on 127.0.0.1 (free ports), ffmpeg
# pushing a looped pre-encoded H.264 + AAC clip over RTMP (-c copy, so the encoder costs nothing),
# and estuary-bench with 100 and 300 WHEP viewers, then 200 and 1000 HTTP-FLV readers when the
# node serves HTTP-FLV (and RTMP/HLS readers when it plays them), a fresh node per run (so RSS
# starts from an idle process). Prints each run's summary and
# JSON; the JSON reports stay in $BENCH_OUT (default bin/bench).
#
#   BENCH_DURATION=20s BENCH_SIZE=1280x720 BENCH_BITRATE=2M bash scripts/bench.sh
#
# BENCH_MEDIAMTX=/path/to/mediamtx runs the same loads against MediaMTX (built from its public
# sources outside this repository) in the same session: WHEP ($BENCH_WHEP), RTMP play
# ($BENCH_RTMP) and HLS ($BENCH_HLS) readers, same clip, same push, same estuary-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${BENCH_OUT:-$ROOT/bin/bench}
DURATION=${BENCH_DURATION:-15s}
SIZE=${BENCH_SIZE:-1280x720}
BITRATE=${BENCH_BITRATE:-2M}
RAMP=${BENCH_RAMP:-50}
WHEP_COUNTS=${BENCH_WHEP-"100 300"}
FLV_COUNTS=${BENCH_FLV-"200 1000"}
RTMP_COUNTS=${BENCH_RTMP-"200 1000"}
HLS_COUNTS=${BENCH_HLS-"100"}
mkdir -p "$OUT" bin
export CGO_ENABLED=0
go build -trimpath -o bin/estuary ./cmd/estuary
go build -trimpath -o bin/estuary-bench ./cmd/estuary-bench

work=$(mktemp -d)
EPID=""; FPID=""
stop_node() {
  [ -n "$FPID" ] && { kill "$FPID" 2>/dev/null || true; wait "$FPID" 2>/dev/null || true; }
  [ -n "$EPID" ] && { kill "$EPID" 2>/dev/null || true; wait "$EPID" 2>/dev/null || true; }
  EPID=""; FPID=""
}
cleanup() { stop_node; rm -rf "$work"; }
trap cleanup EXIT

clip=$OUT/clip-$SIZE-$BITRATE.flv
if [ ! -s "$clip" ]; then
  echo "bench: encoding a 20 s $SIZE clip at $BITRATE (once, cached in $clip)"
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=$SIZE:rate=30" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 20 \
    -c:v libx264 -preset veryfast -profile:v high -bf 0 -pix_fmt yuv420p -b:v "$BITRATE" -maxrate "$BITRATE" \
    -bufsize "$BITRATE" -g 60 -keyint_min 60 -sc_threshold 0 -c:a aac -b:a 128k -ac 2 -f flv "$clip"
fi

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_node NAME: a fresh node (so each run's RSS starts from an idle process) and the push.
start_node() {
  HTTP=$(freeport); RTMP=$(freeport); UDP=$(freeport); TCP=$(freeport)
  cat >"$work/estuary.yaml" <<YAML
node_id: bench
log: {level: warn, format: text}
http: {listen: "127.0.0.1:$HTTP", srs_api_listen: ""}
rtmp: {listen: "127.0.0.1:$RTMP", tls_listen: ""}
webrtc: {listen_ip: 127.0.0.1, public_ips: [127.0.0.1], udp_port: $UDP, tcp_port: $TCP}
turn: {enabled: false, listen: ""}
YAML
  bin/estuary -c "$work/estuary.yaml" >"$OUT/estuary-$1.log" 2>&1 &
  EPID=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$HTTP/healthz" >/dev/null && break; sleep 0.1; done
  ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$clip" -c copy -f flv "rtmp://127.0.0.1:$RTMP/live/bench" \
    >"$OUT/ffmpeg-$1.log" 2>&1 &
  FPID=$!
  sleep 3
}

echo "bench: $(date -u +%FT%TZ) on $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p')), Go $(go env GOVERSION), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench: clip $SIZE $BITRATE + AAC 128k, looped with ffmpeg -c copy; a fresh node per run"

run() { # KIND N: a fresh node, then N readers of KIND
  local kind=$1 n=$2 name="$1-$2" url
  start_node "$name"
  case $kind in
    whep|flv|hls) url="http://127.0.0.1:$HTTP" ;;
    rtmp) url="rtmp://127.0.0.1:$RTMP" ;;
  esac
  echo; echo "== $name: estuary-bench -$kind $url -n $n -ramp $RAMP -duration $DURATION -warmup 2s -pid $EPID"
  bin/estuary-bench -stream live/bench -pid "$EPID" -ramp "$RAMP" -duration "$DURATION" -warmup 2s \
    -q -json "$OUT/$name.json" "-$kind" "$url" -n "$n" || echo "bench: $name failed"
  [ -s "$OUT/$name.json" ] && jq -c '{kinds: (.kinds | map_values({joined, join_failures, mbps, units_per_s, lost, loss_ratio, ttfm_p50: .ttfm.p50_ms, ttfm_p99: .ttfm.p99_ms})), server, client, host_udp}' "$OUT/$name.json"
  stop_node
}

# start_mtx NAME: a fresh MediaMTX on loopback ports (RTMP in, WebRTC/RTMP/HLS out) and the push.
start_mtx() {
  HTTP=$(freeport); RTMP=$(freeport); UDP=$(freeport); HLSP=$(freeport)
  cat >"$work/mediamtx.yml" <<YAML
logLevel: warn
api: false
metrics: false
pprof: false
playback: false
rtsp: false
srt: false
moq: false
rtmp: true
rtmpAddress: 127.0.0.1:$RTMP
hls: true
hlsAddress: 127.0.0.1:$HLSP
hlsVariant: mpegts
hlsSegmentDuration: 2s
webrtc: true
webrtcAddress: 127.0.0.1:$HTTP
webrtcLocalUDPAddress: 127.0.0.1:$UDP
webrtcLocalTCPAddress: ""
webrtcIPsFromInterfaces: false
webrtcAdditionalHosts: [127.0.0.1]
paths:
  all_others:
YAML
  "$BENCH_MEDIAMTX" "$work/mediamtx.yml" >"$OUT/mediamtx-$1.log" 2>&1 &
  EPID=$!
  sleep 1
  ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$clip" -c copy -f flv "rtmp://127.0.0.1:$RTMP/live/bench" \
    >"$OUT/ffmpeg-$1.log" 2>&1 &
  FPID=$!
  sleep 3
}

run_mtx() { # KIND N against MediaMTX
  local kind=$1 n=$2 name="mediamtx-$1-$2" url
  start_mtx "$name"
  case $kind in
    whep) url="http://127.0.0.1:$HTTP/{stream}/whep" ;;
    rtmp) url="rtmp://127.0.0.1:$RTMP" ;;
    hls) url="http://127.0.0.1:$HLSP/{stream}/index.m3u8" ;;
  esac
  echo; echo "== $name: estuary-bench -$kind $url -n $n -ramp $RAMP -duration $DURATION -warmup 2s -pid $EPID"
  bin/estuary-bench -stream live/bench -pid "$EPID" -ramp "$RAMP" -duration "$DURATION" -warmup 2s \
    -q -json "$OUT/$name.json" "-$kind" "$url" -n "$n" || echo "bench: $name failed"
  [ -s "$OUT/$name.json" ] && jq -c '{kinds: (.kinds | map_values({joined, join_failures, mbps, units_per_s, lost, loss_ratio, ttfm_p50: .ttfm.p50_ms, ttfm_p99: .ttfm.p99_ms})), server, client, host_udp}' "$OUT/$name.json"
  stop_node
}

start_node probe
probe=$(bin/estuary-bench -stream live/bench -probe -json - -whep "http://127.0.0.1:$HTTP" -flv "http://127.0.0.1:$HTTP" \
  -rtmp "rtmp://127.0.0.1:$RTMP" -hls "http://127.0.0.1:$HTTP" 2>/dev/null)
stop_node
plays() { [ "$(jq -r ".kinds.$1.joined" <<<"$probe")" = 1 ]; }
for k in whep flv rtmp hls; do
  if plays "$k"; then echo "bench: $k plays"; else echo "bench: $k does not play: $(jq -c ".kinds.$k.failure_reasons" <<<"$probe")"; fi
done

for n in $WHEP_COUNTS; do run whep "$n"; done
if plays flv; then for n in $FLV_COUNTS; do run flv "$n"; done; fi
if plays rtmp; then for n in $RTMP_COUNTS; do run rtmp "$n"; done; fi
if plays hls; then for n in $HLS_COUNTS; do run hls "$n"; done; fi
if [ -n "${BENCH_MEDIAMTX:-}" ]; then
  echo; echo "bench: MediaMTX $("$BENCH_MEDIAMTX" --version 2>/dev/null || true) ($BENCH_MEDIAMTX)"
  for n in $WHEP_COUNTS; do run_mtx whep "$n"; done
  for n in $RTMP_COUNTS; do run_mtx rtmp "$n"; done
  for n in $HLS_COUNTS; do run_mtx hls "$n"; done
fi
echo; echo "bench: JSON reports in $OUT"

# ---------------------------------------------------------------------------------------------------
# Cluster: origin CPU with three edges and 300 WHEP viewers (100 per edge) against one standalone node
# with 300 viewers (issue 9; test/cluster_bench_e2e_test.go, needs redis-server). BENCH_CLUSTER=0 skips it.
if [ "${BENCH_CLUSTER:-1}" != 0 ]; then
  echo; echo "== cluster: go test -tags e2e -run '^\$' -bench ClusterOriginCPU -benchtime 1x ./test/"
  ESTUARY_BIN=$ROOT/bin/estuary go test -tags e2e -count=1 -run '^$' -bench ClusterOriginCPU -benchtime 1x ./test/ \
    | tee "$OUT/cluster-origin-cpu.txt" || echo "bench: cluster origin CPU failed"
fi
