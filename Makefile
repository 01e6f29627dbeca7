# The README's commands. `make test` is what CI runs.
.PHONY: run test vet build redis-up redis-cluster-up redis-down

run:
	go run ./cmd/stickycalls

test: vet
	go test -race -count=1 ./...

vet:
	go vet ./...

build:
	CGO_ENABLED=0 go build -o bin/stickycalls ./cmd/stickycalls

# The docker-compose topology with local redis-server (no Docker needed).
redis-up:
	@scripts/redis-up.sh

redis-cluster-up:
	@CLUSTER=1 REDIS_PORT=7000 scripts/redis-up.sh

redis-down:
	@scripts/redis-down.sh
