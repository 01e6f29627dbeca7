package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stickycalls/stickycalls/cmd/stickycalls/internal/service"
)

// floorSource is the floor's one script: a counter per caller.
const floorSource = `return redis.call('HINCRBY', KEYS[1], 'n', 1)`

// maxFloorWaves is the most ordered round trips a floor makes: the
// service's workloads are read against the floor with as many as theirs,
// capped here (issue 16).
const maxFloorWaves = 3

// floor is the least any Redis-backed JSON API does: decode a small JSON
// body, run one EVALSHA and encode a small JSON answer. POST /floor/N runs
// the same EVALSHA N times in a row, each waiting for the answer before
// the last, the least an API making N ordered round trips to Redis does.
// It listens on STICKYCALLS_ADDR and uses STICKYCALLS_REDIS_URL, with the
// pool settings of the service's store, until ctx is done.
func floor(ctx context.Context, getenv func(string) string) error {
	opts, err := redis.ParseURL(getenv("STICKYCALLS_REDIS_URL"))
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout, opts.PoolTimeout = 2*time.Second, time.Second, time.Second, 2*time.Second
	opts.MaxRetries, opts.ContextTimeoutEnabled = -1, true
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	script := redis.NewScript(floorSource)
	if err := script.Load(ctx, rdb).Err(); err != nil {
		return fmt.Errorf("floor: load script: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /floor/{waves}", handleFloor(rdb, script))
	mux.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	return serveUntilDone(ctx, getenv("STICKYCALLS_ADDR"), mux)
}

func handleFloor(rdb *redis.Client, script *redis.Script) http.Handler {
	type request struct {
		CallID string `json:"call_id"`
		Hints  struct {
			ANI string `json:"ani"`
		} `json:"identity_hints"`
	}
	type response struct {
		CallID string `json:"call_id"`
		Calls  int64  `json:"calls"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		waves, err := strconv.Atoi(r.PathValue("waves"))
		if err != nil || waves < 1 || waves > maxFloorWaves {
			http.Error(w, `{"error":"waves must be 1 to 3"}`, http.StatusNotFound)
			return
		}
		var req request
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
			http.Error(w, `{"error":"malformed JSON"}`, http.StatusBadRequest)
			return
		}
		var n int64
		for range waves {
			if n, err = script.EvalSha(r.Context(), rdb, []string{"floor:{" + req.Hints.ANI + "}"}).Int64(); err != nil {
				http.Error(w, `{"error":"internal error"}`, http.StatusInternalServerError)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(response{CallID: req.CallID, Calls: n})
	})
}

// serveUntilDone serves h on addr until ctx is done.
func serveUntilDone(ctx context.Context, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return err
}

// profiledServe is the service as the bench runs it: service.Serve, plus, when
// STICKYCALLS_BENCH_PROFILE_ADDR is set, a CPU profile endpoint there
// (GET /cpu?seconds=N) so the bench can profile the phases it chooses.
func profiledServe(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	if addr := getenv("STICKYCALLS_BENCH_PROFILE_ADDR"); addr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /cpu", handleCPUProfile())
		pctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- serveUntilDone(pctx, addr, mux) }()
		defer func() { stop(); <-done }()
	}
	return service.Serve(ctx, getenv, stdout)
}

// handleCPUProfile writes a CPU profile of the next seconds.
func handleCPUProfile() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secs, err := strconv.ParseFloat(r.URL.Query().Get("seconds"), 64)
		if err != nil || secs <= 0 {
			http.Error(w, "seconds must be a positive number", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if err := pprof.StartCPUProfile(w); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		select {
		case <-time.After(time.Duration(secs * float64(time.Second))):
		case <-r.Context().Done():
		}
		pprof.StopCPUProfile()
	})
}
