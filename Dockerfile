# Multi-stage build: a static binary on a minimal, non-root image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/stickycalls ./cmd/stickycalls

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/stickycalls /stickycalls
USER nonroot:nonroot
EXPOSE 8080
ENV STICKYCALLS_ADDR=:8080 STICKYCALLS_DATA=/data/stickycalls.db
VOLUME ["/data"]
HEALTHCHECK NONE
ENTRYPOINT ["/stickycalls"]
CMD ["serve"]
