# clerksync's two commands: `make run` (the whole system on local defaults)
# and `make test` (every test, against real PostgreSQL and Temporal).

SHELL := /bin/bash

# The Temporal CLI is pinned and built from the Go module proxy: later
# versions cannot be installed with go install. It is cached across runs.
TEMPORAL_CLI_VERSION := v1.5.1
CACHE_DIR ?= $(HOME)/.cache/clerksync
TEMPORAL_CLI ?= $(CACHE_DIR)/temporal-$(TEMPORAL_CLI_VERSION)/temporal
export TEMPORAL_CLI

# The pinned temporal-server and its SQL tool, for the cluster tests (make
# test-cluster): built from the Go module proxy and cached as the CLI is.
TEMPORAL_SERVER_VERSION := v1.29.7
TEMPORAL_SERVER_DIR ?= $(CACHE_DIR)/temporal-server-$(TEMPORAL_SERVER_VERSION)
export TEMPORAL_SERVER_DIR

# Prometheus's promtool, for the alerting rules' tests (make test-alerts):
# built from the Go module proxy and cached as the CLI is. v0.3xx.y is
# Prometheus v3.xx.y, the release docker-compose.yml's Prometheus runs (a
# test holds the two together).
PROMTOOL_VERSION := v0.316.0
PROMTOOL ?= $(CACHE_DIR)/promtool-$(PROMTOOL_VERSION)/promtool

# The TypeScript ensure client, an npm package beside the Go library, and
# the Next.js example that uses it.
TS_CLIENT := ensure/typescript
TS_EXAMPLE := docs/examples/nextjs

# The server the tests create their databases on, and `make run` its own.
ADMIN_DATABASE_URL ?= postgres://127.0.0.1:5432/postgres
export TEST_DATABASE_URL ?= $(ADMIN_DATABASE_URL)

# A signing secret for local runs only, so `go run ./starter send` works
# out of the box. Never use it for a real Clerk endpoint.
LOCAL_WEBHOOK_SECRET := whsec_Y2xlcmtzeW5jLWxvY2FsLWRldi1vbmx5LXNlY3JldA==
# Likewise a payload key for local runs only, so the UI shows what
# encryption looks like and decodes it through the starter's /codec.
LOCAL_PAYLOAD_KEYS := local:Y2xlcmtzeW5jIGxvY2FsIGRldmVsb3BtZW50IG9ubHk=
# And the key the local product backend (the README's curl) sends to ensure.
LOCAL_ENSURE_API_KEY := clerksync-local-development-only-ensure-key

.PHONY: help run reset test vet lint chaos bench temporal-cli temporal-server promtool test-cluster test-upgrade test-alerts database

## help: list these targets
help:
	@grep -E '^## [a-z-]+:' $(MAKEFILE_LIST) | sed 's/^## //' | awk -F': ' '{ t = $$1; sub(/^[^:]*: /, ""); printf "  %-13s %s\n", t, $$0 }'

# The commit the binaries say they are (--version, clerksync_build_info).
BUILD_LDFLAGS := -X github.com/clerksync/clerksync/internal/buildinfo.Commit=$(shell git rev-parse HEAD 2>/dev/null)

# Where make run listens (all on 127.0.0.1) and keeps its state. The defaults
# are the README's; the make-run test moves them out of a developer's way.
TEMPORAL_PORT ?= 7233
TEMPORAL_UI_PORT ?= 8233
STARTER_PORT ?= 8080
WORKER_PORT ?= 8081
DEVCLERK_PORT ?= 8082
RUN_DIR ?= .run
RUN_DATABASE ?= clerksync
RUN_PORTS := $(TEMPORAL_PORT) $(TEMPORAL_UI_PORT) $(STARTER_PORT) $(WORKER_PORT) $(DEVCLERK_PORT)

## run: Temporal dev server (UI on :8233), worker (:8081), starter (:8080) and a local Clerk stand-in (:8082), against PostgreSQL on loopback
run: $(TEMPORAL_CLI) database
	@for port in $(RUN_PORTS); do \
	  if (exec 3<>/dev/tcp/127.0.0.1/$$port) 2>/dev/null; then \
	    echo "make run: 127.0.0.1:$$port is already in use (another make run?); stop it first" >&2; exit 1; \
	  fi; \
	done
	@mkdir -p $(RUN_DIR)
	@go build -ldflags "$(BUILD_LDFLAGS)" -o $(RUN_DIR)/worker ./worker && go build -ldflags "$(BUILD_LDFLAGS)" -o $(RUN_DIR)/starter ./starter && go build -o $(RUN_DIR)/devclerk ./internal/devclerk
	@set -m; \
	  export DATABASE_URL="$${DATABASE_URL:-postgres://127.0.0.1:5432/$(RUN_DATABASE)}"; \
	  export TEMPORAL_ADDRESS="127.0.0.1:$(TEMPORAL_PORT)"; \
	  export CLERK_WEBHOOK_SECRET="$${CLERK_WEBHOOK_SECRET:-$(LOCAL_WEBHOOK_SECRET)}"; \
	  export HTTP_ADDR="$${HTTP_ADDR:-127.0.0.1:$(STARTER_PORT)}"; \
	  export WORKER_HTTP_ADDR="$${WORKER_HTTP_ADDR:-127.0.0.1:$(WORKER_PORT)}"; \
	  export LOG_FORMAT="$${LOG_FORMAT:-text}"; \
	  export PAYLOAD_KEYS="$${PAYLOAD_KEYS:-$(LOCAL_PAYLOAD_KEYS)}"; \
	  export ENSURE_API_KEYS="$${ENSURE_API_KEYS:-$(LOCAL_ENSURE_API_KEY)}"; \
	  export CODEC_CORS_ORIGINS="$${CODEC_CORS_ORIGINS:-http://127.0.0.1:$(TEMPORAL_UI_PORT),http://localhost:$(TEMPORAL_UI_PORT)}"; \
	  pids=""; \
	  stop() { [ -n "$$pids" ] && kill $$pids 2>/dev/null; wait $$pids 2>/dev/null; kill $$server 2>/dev/null; wait $$server 2>/dev/null; }; \
	  trap 'stop; exit 0' INT TERM; trap stop EXIT; \
	  if [ -z "$$CLERK_SECRET_KEY" ]; then \
	    export CLERK_SECRET_KEY=sk_test_clerksync_fake CLERK_API_URL="http://127.0.0.1:$(DEVCLERK_PORT)/v1"; \
	    $(RUN_DIR)/devclerk --addr 127.0.0.1:$(DEVCLERK_PORT) & pids="$$!"; \
	    clerk="local Clerk stand-in (starter token <clerk_id> signs you in)"; \
	  else clerk="Clerk at $${CLERK_API_URL:-the Clerk API}"; fi; \
	  "$(TEMPORAL_CLI)" server start-dev --ip 127.0.0.1 --port $(TEMPORAL_PORT) --ui-port $(TEMPORAL_UI_PORT) \
	    --db-filename $(RUN_DIR)/temporal.db --log-level error \
	    --ui-codec-endpoint "http://$$HTTP_ADDR/codec" \
	    --search-attribute ClerkUserId=Keyword --search-attribute ClerkSyncState=Keyword --search-attribute ClerkOrganizationId=Keyword \
	    > >(sed -u 's/^/temporal | /') 2>&1 & server=$$!; \
	  for _ in $$(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$(TEMPORAL_PORT)) 2>/dev/null && break; sleep 0.2; done; \
	  $(RUN_DIR)/worker & pids="$$pids $$!"; \
	  $(RUN_DIR)/starter serve & pids="$$pids $$!"; \
	  echo "make run: Temporal UI http://127.0.0.1:$(TEMPORAL_UI_PORT)  webhooks http://$$HTTP_ADDR/webhooks/clerk  $$clerk  (Ctrl-C stops everything)"; \
	  wait -n $$pids; status=$$?; \
	  echo "make run: a process exited (status $$status); stopping the others" >&2; exit $$status

## reset: drop make run's database and Temporal state (asks first), so the README's "Try it" runs again from nothing
reset:
	@for port in $(TEMPORAL_PORT) $(STARTER_PORT); do \
	  if (exec 3<>/dev/tcp/127.0.0.1/$$port) 2>/dev/null; then \
	    echo "make reset: make run is running (127.0.0.1:$$port is in use); stop it first" >&2; exit 1; \
	  fi; \
	done
	@read -r -p "Drop the $(RUN_DATABASE) database and $(RUN_DIR)/temporal.db (every local user, tombstone and workflow)? [y/N] " answer; \
	  [ "$$answer" = y ] || [ "$$answer" = yes ] || { echo "make reset: nothing dropped"; exit 0; }
	psql "$(ADMIN_DATABASE_URL)" -qc "drop database if exists $(RUN_DATABASE)"
	rm -f $(RUN_DIR)/temporal.db
	@echo "make reset: done; make run starts from nothing"

## test: unit, workflow and end-to-end tests (real PostgreSQL, a Temporal dev server per package), then a count of tests run, skipped and failed
# -timeout 20m: internal/systemtest alone takes 5 to 7 minutes on two cores,
# and a test that stalls must fail with its own diagnosis, not go test's
# 10-minute panic. -p 4: most tests wait on a server (a dev server, a
# process, the SDK's two minutes of poll retries before the worker gives up
# a deleted namespace), so with go test's default of a package a core the
# two cores sat idle 40% of the time, and worker, started among the last,
# ran two minutes after the rest had finished (420 s against 341 s).
test: $(TEMPORAL_CLI) vet lint $(TS_CLIENT)/node_modules/.package-lock.json $(TS_EXAMPLE)/node_modules/.package-lock.json
	go tool gotestsum --format pkgname-and-test-fails -- -race -count=1 -p 4 -timeout 20m ./...

# -tags cluster,upgrade: the cluster and upgrade tests are vetted and
# linted with the rest.
TEST_TAGS := cluster,upgrade

vet:
	go vet -tags $(TEST_TAGS) ./...

# The TypeScript client's and the example's npm packages, pinned by their
# lockfiles (reinstalled when a lockfile changes); their tests run within go
# test (internal/systemtest's TestTypeScriptClient), against real starters.
%/node_modules/.package-lock.json: %/package-lock.json
	cd $* && npm ci --no-audit --no-fund

## lint: gofmt, a tidy go.mod, staticcheck (pinned in go.mod's tools), and the golden SQL and dashboard JSON, as make test runs them first
lint:
	@files=$$(gofmt -l $$(go list -tags $(TEST_TAGS) -f '{{.Dir}}' ./...)); if [ -n "$$files" ]; then echo "lint: not gofmt-formatted (run gofmt -w .):"; echo "$$files"; exit 1; fi
	@go mod tidy -diff > /dev/null || { echo "lint: go.mod or go.sum is not tidy (run go mod tidy)"; exit 1; }
	go tool staticcheck -tags $(TEST_TAGS) ./...
	@go test -count=1 -run 'TestStatements_MatchTheGoldenSQL|TestDashboard_IsTheCheckedInJSON' ./internal/store ./internal/dashboard > /dev/null || { echo "lint: the golden SQL or the dashboard JSON differs from what the code builds (go test ./internal/store -run TestStatements -update-sql; go test ./internal/dashboard -update)"; exit 1; }

# CHAOS_ROUNDS: how many times make chaos runs its scenario, each with a new
# seed; its rarer interleavings (a worker killed between a deletion's
# tombstone and its row's removal) show in about one run of three.
CHAOS_ROUNDS ?= 3

## chaos: the full-size fault-injection run, CHAOS_ROUNDS times (1,000 users, 20 s database cut, 2 worker kills, 10 s Temporal cut)
chaos: $(TEMPORAL_CLI)
	CHAOS_FULL=1 CI=true go test -count=$(CHAOS_ROUNDS) -timeout 90m -run TestChaos -v ./internal/systemtest/chaos/

## bench: clerksync beside a trivial entity workflow, each phase on a dev server of its own, backfills at Clerk's rate limit, user bases up to a million, then the production-shaped cluster, in one run (15 to 30 minutes on two cores); writes docs/benchmarks.md
bench: $(TEMPORAL_CLI) $(TEMPORAL_SERVER_DIR)/server
	CI=true go test -count=1 -run XXX -bench Report -benchtime 1x -timeout 45m ./internal/systemtest/bench/

## temporal-server: build the pinned temporal-server and temporal-sql-tool into the cache (about 4 minutes on two cores, once)
temporal-server: $(TEMPORAL_SERVER_DIR)/server
	@echo "temporal-server $(TEMPORAL_SERVER_VERSION): $(TEMPORAL_SERVER_DIR)"

$(TEMPORAL_SERVER_DIR)/server:
	GOBIN=$(TEMPORAL_SERVER_DIR) go install go.temporal.io/server/cmd/server@$(TEMPORAL_SERVER_VERSION) go.temporal.io/server/cmd/tools/sql@$(TEMPORAL_SERVER_VERSION)

## test-cluster: clerksync on a production-shaped Temporal (4-shard temporal-server on PostgreSQL, mutual TLS, two workers, two starters, crashes and a history restart)
test-cluster: $(TEMPORAL_CLI) $(TEMPORAL_SERVER_DIR)/server
	CI=true go tool gotestsum --format pkgname-and-test-fails -- -tags cluster -count=1 -timeout 20m ./internal/systemtest/cluster/

## test-upgrade: roll each deployed release (built from this repository's history, cached) forward to this checkout and back, under live webhooks (docs/upgrading.md)
test-upgrade: $(TEMPORAL_CLI)
	@mkdir -p $(CACHE_DIR)/releases
	RELEASE_CACHE=$(CACHE_DIR)/releases CI=true go tool gotestsum --format pkgname-and-test-fails -- -tags upgrade -count=1 -timeout 20m ./internal/systemtest/upgrade/

## test-alerts: the alerting rules (deploy/prometheus/alerts.yml) and compose's Prometheus config checked, and the rules unit-tested, by the pinned promtool
test-alerts: $(PROMTOOL)
	$(PROMTOOL) check config deploy/prometheus/prometheus.yml
	$(PROMTOOL) test rules deploy/prometheus/alerts_test.yml

## promtool: build the pinned promtool into the cache (several minutes on two cores, once)
promtool: $(PROMTOOL)
	@echo "promtool $(PROMTOOL_VERSION): $(PROMTOOL)"

$(PROMTOOL):
	@echo "Building promtool $(PROMTOOL_VERSION) from the Go module proxy: several minutes, once (cached in $(dir $@))"
	GOBIN=$(dir $@) go install github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)

## temporal-cli: build the pinned Temporal CLI into the cache and print its path
temporal-cli: $(TEMPORAL_CLI)
	@echo "Temporal CLI $(TEMPORAL_CLI_VERSION): $(TEMPORAL_CLI)"

$(TEMPORAL_CLI):
	@echo "Building the Temporal CLI $(TEMPORAL_CLI_VERSION) from the Go module proxy: a few minutes, once (cached in $(dir $@))"
	GOBIN=$(dir $@) go install -ldflags "-X github.com/temporalio/cli/temporalcli.Version=$(TEMPORAL_CLI_VERSION:v%=%)" \
	  github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

# Creates the local database unless DATABASE_URL points elsewhere.
database:
	@if [ -z "$$DATABASE_URL" ]; then \
	  psql "$(ADMIN_DATABASE_URL)" -tAc "select 1 from pg_database where datname = '$(RUN_DATABASE)'" | grep -q 1 \
	    || psql "$(ADMIN_DATABASE_URL)" -qc "create database $(RUN_DATABASE)"; \
	fi
