# The README's commands. `make test` is what CI runs.
.PHONY: run test vet build

run:
	go run ./cmd/stickycalls

test: vet
	go test -race -count=1 ./...

vet:
	go vet ./...

build:
	CGO_ENABLED=0 go build -o bin/stickycalls ./cmd/stickycalls
