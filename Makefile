# Estuary: `make run` builds and starts a standalone node; `make test` installs what the tests need and runs them.
GO       ?= go
BIN      := bin
export CGO_ENABLED := 0
TEST_TIMEOUT ?= 14m

.PHONY: all build web run test deps vet unit bench soak fuzz clean

all: build

deps:
	@bash scripts/deps.sh

# Bundles the npm front-end libraries into web/static/vendor when node_modules exists (make test and
# make run install it first); a plain `go build` uses the committed fallback.
web:
	@if [ -f web/package.json ] && [ -d web/node_modules ]; then bash scripts/web.sh; fi

build: web
	@mkdir -p $(BIN)
	$(GO) build -trimpath -o $(BIN)/estuary ./cmd/estuary
	@if ls cmd/estuary-bench/*.go >/dev/null 2>&1; then $(GO) build -trimpath -o $(BIN)/estuary-bench ./cmd/estuary-bench; fi

# Starts a standalone node on the defaults (ARGS="-c configs/origin.yaml" picks a config); it prints
# its URLs and stops cleanly on Ctrl-C or SIGTERM. exec: the signal goes straight to estuary.
run: deps build
	@echo "HTTPS/RTMPS: make a local certificate with"
	@echo "  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost \\"
	@echo "    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout key.pem -out cert.pem"
	@echo "  and set http.tls_cert/http.tls_key (and rtmp.tls_cert/rtmp.tls_key for rtmps:// on rtmp.tls_listen)."
	exec ./$(BIN)/estuary $(ARGS)

vet:
	$(GO) vet ./...
	$(GO) vet -tags e2e ./...

# Everything, end-to-end tests included. Packages that start servers run one at a time (-p 1).
test: deps build vet
	ESTUARY_BIN=$(CURDIR)/$(BIN)/estuary $(GO) test -tags e2e -p 1 -count=1 -timeout $(TEST_TIMEOUT) ./...

unit:
	$(GO) test -short -count=1 ./...

bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./sfu/... ./bridge/... ./signaling/... ./cascade/...
	@if [ -f scripts/bench.sh ]; then bash scripts/bench.sh; fi

soak: deps build
	ESTUARY_BIN=$(CURDIR)/$(BIN)/estuary ESTUARY_SOAK=1 $(GO) test -tags e2e,soak -p 1 -count=1 -timeout 80m ./test/...

# Runs every fuzz target for FUZZTIME each (make fuzz FUZZTIME=1m).
FUZZTIME ?= 30s
fuzz:
	@bash scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf $(BIN)
