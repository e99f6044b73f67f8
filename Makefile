# Petrel's developer entry points. `make run` serves on 127.0.0.1:11211 and
# keeps its data in ./data (the journal) across restarts; `make test` installs
# the test dependencies (Debian packages, staticcheck), lints, and runs every
# test, the end-to-end ones included.

GO          ?= go
GOBIN_DIR   := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN_DIR)/staticcheck
FUZZTIME    ?= 20s
# The whole suite takes a few minutes on 2 cores; the timeout only catches a hang.
TEST_TIMEOUT ?= 15m

.PHONY: all build run deps lint test fuzz bench clean

all: build

build:
	$(GO) build -o bin/petrel ./cmd/petrel

run: build
	bin/petrel serve -l 127.0.0.1 -p 11211 --data-dir ./data

deps:
	scripts/install-deps.sh

lint: deps
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt -l: these files need gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

# PETREL_REQUIRE_DEPS=1 turns "skipped: memcached not installed" into a
# failure: deps has just installed everything.
test: deps lint
	PETREL_REQUIRE_DEPS=1 $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

# Petrel beside memcached (and Redis) in one run; docs/performance.md says
# how to read it. BENCH_ARGS passes flags, e.g. BENCH_ARGS="-only etc -rounds 5".
bench: build
	$(GO) run ./bench/compare $(BENCH_ARGS)

clean:
	rm -rf bin
