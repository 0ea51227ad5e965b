# Estuary: one static, pure-Go binary (CGO_ENABLED=0) on a distroless base, run as a non-root user.
#   docker build -t estuary --build-arg VERSION=$(git describe --always) .
#   docker run --rm -p 1935:1935 -p 8080:8080 -p 1985:1985 -p 8000:8000/udp -p 8000:8000 estuary
# The web pages' npm assets (hls.js, mpegts.js) are embedded from web/static/vendor when `make web`
# has built them, else from the committed fallback (DESIGN.md): the image never needs node.

FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN go build -ldflags "-s -w -X main.version=${VERSION}" -o /out/estuary ./cmd/estuary \
 && /out/estuary -print-config >/dev/null

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/estuary /usr/local/bin/estuary
COPY configs/estuary.yaml configs/origin.yaml configs/edge.yaml /etc/estuary/
# distroless "nonroot" is uid/gid 65532; every default port is above 1024.
USER 65532:65532
# RTMP, HTTP (pages, WHIP/WHEP, FLV, HLS, API, metrics), SRS API, WebRTC media (UDP mux + ICE-TCP), TURN.
EXPOSE 1935/tcp 8080/tcp 1985/tcp 8000/udp 8000/tcp 3478/udp 3478/tcp
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/estuary"]
CMD ["-c", "/etc/estuary/estuary.yaml"]
