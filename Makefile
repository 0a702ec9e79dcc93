# zmqtt-go developer commands. `make test` is what CI runs.
GO        ?= go
FUZZTIME  ?= 30s
BENCHTIME ?= 1s
COUNT     ?= 6
BENCHSTAT ?= $(GO) run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

# GO_NEXT is the newer of the two Go releases we support (go.mod names the
# older, 1.26); `make test-next` fetches it from the module proxy.
GO_NEXT   ?= go1.27.3

.PHONY: all test test-next vet arch ledger lint fuzz fuzz-long bench demo

all: test

## test: formatting, vet, the architecture test, every test with the race
## detector, then the allocation tests (TestAllocs*), which need a build
## without it.
test: vet arch
	$(GO) test -race -timeout 30m ./...
	$(GO) test -count=1 -run '^TestAllocs' ./...
	cd otelzmqtt && $(GO) test -race -timeout 10m ./...

## test-next: vet and every test (without -race, to keep CI short) on the
## newer supported Go release, fetched as a toolchain from the module proxy.
test-next:
	GOTOOLCHAIN=$(GO_NEXT) $(GO) version
	GOTOOLCHAIN=$(GO_NEXT) $(GO) vet ./...
	GOTOOLCHAIN=$(GO_NEXT) $(GO) test -count=1 -timeout 30m ./...

## vet: gofmt and go vet must be clean.
vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go') 2>/dev/null | grep -v '^testdata/'); \
	if [ -n "$$out" ]; then echo "gofmt: unformatted files:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd otelzmqtt && $(GO) vet ./...

## ledger: write CONFORMANCE.md, the ledger of the MQTT normative statements
## and the tests that cite them (internal/ledger). Its test, part of `make
## test`, fails when the file is out of date, when a citation names no
## statement, or when a statement that binds the client has neither a test
## nor a reason in testdata/spec/untestable.tsv.
ledger:
	$(GO) run ./internal/ledger/cmd/ledger

## lint: staticcheck over the SDK and the bench module (fetched through the
## module proxy; not part of test, so that CI does not depend on it).
lint:
	$(STATICCHECK) ./...
	cd bench && $(STATICCHECK) ./...

## arch: layers import only downward (DESIGN.md section 1).
arch:
	$(GO) test -count=1 -run 'TestArchitecture' ./internal/archtest

# FUZZGO runs the fuzzer on the newer supported release: Go 1.26's fuzz
# coordinator can fail a run that reached -fuzztime with "context deadline
# exceeded" and no input (golang/go#75804, fixed in Go 1.27).
FUZZGO    ?= GOTOOLCHAIN=$(GO_NEXT) $(GO)

## fuzz: run every fuzz target in fuzz/ for FUZZTIME each (default 30s).
fuzz:
	@set -e; for t in $$($(GO) test -list '^Fuzz' ./fuzz | grep '^Fuzz'); do \
		echo "== $$t ($(FUZZTIME))"; \
		$(FUZZGO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) ./fuzz; \
	done

## fuzz-long: a campaign. Every fuzz target in fuzz/ at once, each for
## FUZZLONG (default 10m, one worker each), then a table of executions, new
## coverage and crashers per target (internal/fuzzlong). Logs in fuzz/out/.
FUZZLONG ?= 10m
fuzz-long:
	$(FUZZGO) run ./internal/fuzzlong -time $(FUZZLONG) -out fuzz/out ./fuzz

## bench: benchmarks side by side with other MQTT codecs, summarised by benchstat.
bench:
	@mkdir -p bench/out
	@# tee would hide a failed run (a benchmark whose check fails): keep go test's status.
	cd bench && { $(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(COUNT) ./...; \
		echo $$? > out/bench.rc; } | tee out/bench.txt; exit $$(cat out/bench.rc)
	cd bench && $(BENCHSTAT) -col /impl out/bench.txt | tee out/benchstat.txt

## demo: build and run `zmqtt demo` against a private Mosquitto it starts
## (installs the Debian package mosquitto first when it is missing).
demo:
	@if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then \
		if command -v apt-get >/dev/null; then \
			echo "make demo: installing mosquitto (apt-get install -y mosquitto)"; \
			if [ "$$(id -u)" = 0 ]; then S=""; else S="sudo"; fi; \
			$$S apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$S apt-get install -y -qq mosquitto; \
		else \
			echo "make demo: install mosquitto first (e.g. brew install mosquitto)"; exit 1; \
		fi; \
	fi
	$(GO) build -o bin/zmqtt ./cmd/zmqtt
	PATH="$$PATH:/usr/sbin" ./bin/zmqtt demo
