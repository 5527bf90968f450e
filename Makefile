# edge-agent — `make help` lists the targets.
GO       ?= go
BIN      := edge-agent
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# Release build tags. nethttpomithttp2 leaves HTTP/2 out of net/http (-448 KiB
# on arm64): the status socket, the metrics endpoint and MQTT over websockets
# all speak HTTP/1.1.
TAGS     ?= nethttpomithttp2
# What the small build (OpenWrt gateways) leaves out; packaging/lib.sh's small flavour.
SMALL_TAGS := nop2p,nometrics,nocamera,notpm,nosx127x,noobd,noedbatch
FUZZTIME ?= 20000x
export CGO_ENABLED ?= 0

.PHONY: help build build-collector demo test test-deps lint unit fuzz-short fuzz bench bench-lora bench-p2p size-check clean soak

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

build: ## build bin/edge-agent for this machine (static, CGO off)
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o bin/$(BIN) ./cmd/edge-agent

# The network side is its own binary; the demo runs bin/edge-collector (found next to bin/edge-agent).
build-collector: ## build bin/edge-collector, the network side, for this machine (static, CGO off)
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o bin/edge-collector ./cmd/edge-collector

demo: build build-collector ## run the whole pipeline on simulated hardware for 15 s (edge-collector as its network side), then verify what it delivered
	./bin/$(BIN) demo --duration 15s

test: test-deps lint unit fuzz-short size-check test-packaging test-ipk test-fleet qemu-smoke ## everything CI runs: set-up, lint, tests with -race, short fuzzing, size, packaging, ARM builds run under qemu
	@echo "make test: all passed"

test-deps: ## install what the tests need (Debian packages); safe to re-run
	@scripts/install-test-deps.sh

STATICCHECK := bin/tools/staticcheck
# staticcheck is pinned in tools/staticcheck/go.mod; rebuilt only when the pin changes.
$(STATICCHECK): tools/staticcheck/go.mod tools/staticcheck/go.sum
	cd tools/staticcheck && $(GO) build -o $(abspath $@) honnef.co/go/tools/cmd/staticcheck

lint: $(STATICCHECK) ## gofmt, go vet (amd64 and 32-bit arm; the soak and steady tests too), staticcheck, the small build compiles, go mod tidy leaves no diff
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags '$(TAGS)' ./...
	GOARCH=arm $(GO) vet -tags '$(TAGS)' ./... # armv6 and the 32-bit OpenWrt targets: int is 32 bits
	$(GO) build -tags '$(TAGS),$(SMALL_TAGS)' ./agent/... ./attest/... ./doctor/... ./cmd/edge-agent
	$(GO) vet -tags '$(TAGS),soak,steady' ./cmd/edge-agent ./uplink/p2p # the soak and steady-state tests, which the default run does not compile
	$(STATICCHECK) -tags '$(TAGS)' ./...
	@cp go.mod /tmp/go.mod.lint && cp go.sum /tmp/go.sum.lint && $(GO) mod tidy && \
	  if ! git diff --quiet -- go.mod go.sum; then echo "go mod tidy changed go.mod/go.sum: run it and commit"; \
	  cp /tmp/go.mod.lint go.mod; cp /tmp/go.sum.lint go.sum; exit 1; fi

unit: ## go test -race ./... (real mosquitto, gpsd, ptys, loopback sockets, SIGKILL crash test)
	CGO_ENABLED=1 $(GO) test -race -count=1 -tags '$(TAGS)' -timeout 15m ./...

# A count, not a duration: Go 1.26's fuzz coordinator can fail a run with a
# bare "context deadline exceeded" when a duration ends mid-execution on a
# loaded machine (golang/go#75804, fixed in Go 1.27).
fuzz-short: ## every fuzz target for $(FUZZTIME) executions
	@scripts/fuzz.sh $(FUZZTIME)

fuzz: ## every fuzz target for 3,000,000 executions (minutes each)
	@scripts/fuzz.sh 3000000x

bench: build ## Go benchmarks and `edge-agent bench`; figures go to docs/benchmarks.md
	$(GO) test -run '^$$' -bench . -benchmem ./attest ./store
	./bin/$(BIN) bench --duration 10s

SIZE_BUDGET := 16777216
size-check: ## the stripped static linux/arm64 binary with everything in it stays within 16 MiB
	@CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o bin/size-check-arm64 ./cmd/edge-agent
	@size=$$(stat -c %s bin/size-check-arm64); \
	  if [ $$size -gt $(SIZE_BUDGET) ]; then echo "size-check: linux/arm64 binary is $$size bytes, over the $(SIZE_BUDGET)-byte budget"; exit 1; fi; \
	  echo "size-check: linux/arm64 binary is $$size bytes ($$(( ($(SIZE_BUDGET) - size) / 1024 )) KiB under budget)"

# The LoRa latency figures are wall-clock; on a shared machine run them at real-time priority (root),
# as the agent would run on a dedicated hotspot: CHRT= to run without.
CHRT ?= chrt -f 10
bench-lora: ## LoRa multiplexer figures: 10,000 uplinks to two upstreams, added latency, downlink relay
	$(GO) test -c -tags '$(TAGS)' -o bin/agent.test ./agent && $(CHRT) bin/agent.test -test.run '^$$' -test.bench LoRaMultiplexer -test.benchtime 1x -test.v
	$(GO) test -c -tags '$(TAGS)' -o bin/lora.test ./drivers/lora && $(CHRT) bin/lora.test -test.run '^$$' -test.bench RelayLatency -test.benchtime 1x -test.v

bench-p2p: ## p2p figures: verify rate, 20-node propagation latency
	$(GO) test -run '^$$' -bench 'Check|Mesh' -benchtime 1x ./uplink/p2p ./collect

SOAK_TRIALS ?= 5
soak: test-deps ## hostile-conditions soak, minutes (root: mounts a tmpfs): SIGKILL, disk-full, read-only, broker-fault and hostile-gossip trials, SOAK_TRIALS each
	@mkdir -p bin; CGO_ENABLED=1 SOAK_TRIALS=$(SOAK_TRIALS) $(GO) test -tags 'soak $(TAGS)' -run 'TestSoak' -count=1 -timeout 120m -v ./cmd/edge-agent ./uplink/p2p > bin/soak.log 2>&1; rc=$$?; \
	  grep -E '^soak ' bin/soak.log; grep -E -- '--- FAIL' bin/soak.log; echo "full log: bin/soak.log"; exit $$rc

clean: ## remove build output
	rm -rf bin dist

-include packaging/Makefile.mk

# Issue 11: the whole daemon at the rates devices run (figures in docs/benchmarks.md).
.PHONY: bench-steady
bench-steady: ## the real daemon at 1,000, 100, 10 and 1 LoRa packets/s and idle with 1 Hz GNSS, MQTT to a local mosquitto: CPU, disk bytes, fsyncs, RSS per packet
	@scripts/install-test-deps.sh
	$(GO) test -tags steady -count=1 -run TestSteadyState -v -timeout 20m ./cmd/edge-agent | grep -E '^(STEADY|--- |ok|FAIL|panic)|steady_test'
