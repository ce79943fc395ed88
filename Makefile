# handoff — the two commands that matter are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := bin/handoff
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# Test-time tools, pinned. versitygw is a real S3 gateway that checks
# signatures, expiry and sizes.
VERSITYGW_VERSION := v1.8.0
GOBIN := $(shell $(GO) env GOPATH)/bin
TEST_TIMEOUT ?= 20m
# PORT is where `make run` listens, on loopback: make run PORT=9090
PORT ?= 8080

.PHONY: run build test unit deps bench lint fuzz loadtest chaos screenshots clean

## run: build and start a server on embedded defaults (memory, local disk, outbox, dev mode)
## on 127.0.0.1:$(PORT) (make run PORT=9090)
run: build
	./$(BIN) serve --dev --addr 127.0.0.1:$(PORT)

## build: compile the handoff binary into bin/
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/handoff

## deps: install what the tests need when it is missing (redis-server, chromium, versitygw, Centrifugo)
deps:
	@scripts/install-test-deps.sh "$(VERSITYGW_VERSION)"

## test: install test dependencies if missing, then vet and run every test (unit and
## integration: real redis-server, versitygw, chromium, node) with -race
test: deps
	$(GO) vet -tags integration ./...
	PATH="$(GOBIN):$$PATH" $(GO) test -tags integration -race -count=1 -timeout $(TEST_TIMEOUT) ./...

## unit: the tests that need nothing but Go (what `go test ./...` runs)
unit:
	$(GO) test -race -count=1 ./...

## bench: the benchmarks recorded in docs/benchmarks.md
bench: deps
	PATH="$(GOBIN):$$PATH" $(GO) test -run '^$$' -bench . -benchmem -benchtime 2s -tags integration ./hub/ ./internal/realtime/

## lint: formatting and vet
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet -tags integration ./...

## fuzz: run the frame decoder fuzzers (native, Ably JSON, Ably msgpack) for a while (the seed corpora run in make test)
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeFrame -fuzztime 60s ./internal/realtime/
	$(GO) test -run '^$$' -fuzz FuzzDecodeJSON -fuzztime 60s ./ablyproto/
	$(GO) test -run '^$$' -fuzz FuzzDecodeMsgpack -fuzztime 60s ./ablyproto/

## loadtest: 100 GPs end to end against an embedded server (ARGS="--gps 20 --json" to change)
loadtest:
	$(GO) run ./cmd/handoff loadtest $(ARGS)

## chaos: only the chaos suite (internal/chaos): two real nodes behind a balancer, Redis faults
## (kill -9 a node, restart with and without AOF, rollback, Sentinel and Cluster failover); it
## prints the results table (CHAOS_TABLE=file also writes it). `make test` runs it too.
chaos: deps
	PATH="$(GOBIN):$$PATH" $(GO) test -tags integration -race -count=1 -timeout 10m -run TestChaos -v ./internal/chaos/

## screenshots: PNG screenshots of the desktop and phone pages into docs/screenshots/ (headless chromium)
screenshots: deps
	HANDOFF_SCREENSHOTS=1 $(GO) test -tags integration -count=1 -run TestScreenshots ./webui/

clean:
	rm -rf bin
