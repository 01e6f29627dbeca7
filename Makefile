# The README's commands. `make test` is what CI runs.
.PHONY: run test test-deps vet fuzz screenshot build redis-up redis-cluster-up redis-down

run:
	go run ./cmd/stickycalls

test: test-deps vet
	go test -race -count=1 ./...

# redis-server, python3-websockets and promtool (Debian's prometheus, its server kept off), when missing (apt-get, as root or with sudo).
test-deps:
	@scripts/test-deps.sh

# go vet, and gofmt: a file gofmt would change fails the run, naming it.
vet:
	go vet ./...
	@unformatted="$$(gofmt -l .)"; if [ -n "$$unformatted" ]; then echo "gofmt -w these files: $$unformatted" >&2; exit 1; fi

# docs/dashboard.png, from the browser test's scripted calls (needs chromium).
screenshot:
	STICKYCALLS_SCREENSHOT=$(CURDIR)/docs/dashboard.png go test ./cmd/stickycalls -run '^TestDashboardInBrowser$$' -count=1

# Every fuzz target for FUZZTIME each (default 30s); make test runs their seeds.
fuzz:
	@scripts/fuzz.sh

build:
	CGO_ENABLED=0 go build -o bin/stickycalls ./cmd/stickycalls

# The docker-compose topology with local redis-server (no Docker needed).
redis-up:
	@scripts/redis-up.sh

redis-cluster-up:
	@CLUSTER=1 REDIS_PORT=7000 scripts/redis-up.sh

redis-down:
	@scripts/redis-down.sh
