# clerksync's two commands: `make run` (the whole system on local defaults)
# and `make test` (every test, against real PostgreSQL and Temporal).

SHELL := /bin/bash

# The Temporal CLI is pinned and built from the Go module proxy: later
# versions cannot be installed with go install. It is cached across runs.
TEMPORAL_CLI_VERSION := v1.5.1
CACHE_DIR ?= $(HOME)/.cache/clerksync
TEMPORAL_CLI ?= $(CACHE_DIR)/temporal-$(TEMPORAL_CLI_VERSION)/temporal
export TEMPORAL_CLI

# The server the tests create their databases on, and `make run` its own.
ADMIN_DATABASE_URL ?= postgres://127.0.0.1:5432/postgres
export TEST_DATABASE_URL ?= $(ADMIN_DATABASE_URL)

# A signing secret for local runs only, so `go run ./starter send` works
# out of the box. Never use it for a real Clerk endpoint.
LOCAL_WEBHOOK_SECRET := whsec_Y2xlcmtzeW5jLWxvY2FsLWRldi1vbmx5LXNlY3JldA==
# Likewise a payload key for local runs only, so the UI shows what
# encryption looks like and decodes it through the starter's /codec.
LOCAL_PAYLOAD_KEYS := local:Y2xlcmtzeW5jIGxvY2FsIGRldmVsb3BtZW50IG9ubHk=

.PHONY: run test vet chaos bench temporal-cli database

## run: Temporal dev server (UI on :8233), worker (:8081) and starter (:8080), against PostgreSQL on loopback
run: $(TEMPORAL_CLI) database
	@for port in 7233 8233 8080 8081; do \
	  if (exec 3<>/dev/tcp/127.0.0.1/$$port) 2>/dev/null; then \
	    echo "make run: 127.0.0.1:$$port is already in use (another make run?); stop it first" >&2; exit 1; \
	  fi; \
	done
	@mkdir -p .run
	go build -o .run/worker ./worker
	go build -o .run/starter ./starter
	@echo "Temporal UI: http://127.0.0.1:8233  webhook: http://127.0.0.1:8080/webhooks/clerk  (Ctrl-C stops everything)"
	@trap 'kill $$(jobs -p) 2>/dev/null; wait' EXIT; trap 'exit 0' INT TERM; \
	  export CLERK_WEBHOOK_SECRET="$${CLERK_WEBHOOK_SECRET:-$(LOCAL_WEBHOOK_SECRET)}"; \
	  export HTTP_ADDR="$${HTTP_ADDR:-127.0.0.1:8080}"; \
	  export WORKER_HTTP_ADDR="$${WORKER_HTTP_ADDR:-127.0.0.1:8081}"; \
	  export LOG_FORMAT="$${LOG_FORMAT:-text}"; \
	  export PAYLOAD_KEYS="$${PAYLOAD_KEYS:-$(LOCAL_PAYLOAD_KEYS)}"; \
	  export CODEC_CORS_ORIGINS="$${CODEC_CORS_ORIGINS:-http://127.0.0.1:8233,http://localhost:8233}"; \
	  "$(TEMPORAL_CLI)" server start-dev --ip 127.0.0.1 --port 7233 --ui-port 8233 \
	    --db-filename .run/temporal.db --log-level warn \
	    --ui-codec-endpoint http://127.0.0.1:8080/codec \
	    --search-attribute ClerkUserId=Keyword --search-attribute ClerkSyncState=Keyword & \
	  .run/worker & \
	  .run/starter serve & \
	  wait

## test: unit, workflow and end-to-end tests (real PostgreSQL, a Temporal dev server per package)
test: $(TEMPORAL_CLI) vet
	go test -race -count=1 ./...

vet:
	go vet ./...

## chaos: the full-size fault-injection run (1,000 users, 20 s database cut, 2 worker kills, 10 s Temporal cut)
chaos: $(TEMPORAL_CLI)
	CHAOS_FULL=1 CI=true go test -count=1 -timeout 30m -run TestChaos -v ./internal/systemtest/chaos/

## bench: clerksync beside a trivial entity workflow on the same dev server, in one run; writes docs/benchmarks.md
bench: $(TEMPORAL_CLI)
	CI=true go test -count=1 -run XXX -bench Report -benchtime 1x -timeout 30m ./internal/systemtest/bench/

## temporal-cli: build the pinned Temporal CLI into the cache and print its path
temporal-cli: $(TEMPORAL_CLI)
	@echo "Temporal CLI $(TEMPORAL_CLI_VERSION): $(TEMPORAL_CLI)"

$(TEMPORAL_CLI):
	@echo "Building Temporal CLI $(TEMPORAL_CLI_VERSION) (once; cached in $(dir $@))"
	GOBIN=$(dir $@) go install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

# Creates the local database unless DATABASE_URL points elsewhere.
database:
	@if [ -z "$$DATABASE_URL" ]; then \
	  psql "$(ADMIN_DATABASE_URL)" -tAc "select 1 from pg_database where datname = 'clerksync'" | grep -q 1 \
	    || psql "$(ADMIN_DATABASE_URL)" -c "create database clerksync"; \
	fi
