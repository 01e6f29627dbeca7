// Command stickycalls is the Sticky Calls caller-memory service.
//
//	stickycalls [serve]                              run the service (default)
//	stickycalls keys create --tenant T --mode test|prod
//	stickycalls keys list
//	stickycalls keys revoke KEY_ID
//	stickycalls call --from NUMBER --to NUMBER [--digits 1 | --speech "yes"] [--duration 42]
//	stickycalls simulate [--seed 1] [--out docs/RECOGNITION.md]
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/stickycalls/stickycalls/cmd/stickycalls/internal/bench"
	"github.com/stickycalls/stickycalls/cmd/stickycalls/internal/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stickycalls:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  stickycalls [serve]                                  run the service
  stickycalls keys create --tenant NAME --mode test|prod
  stickycalls keys list
  stickycalls keys revoke KEY_ID                       (with STICKYCALLS_ADMIN_TOKEN: through the running server)
  stickycalls export [--tenant default] [--mode prod] [--out FILE]   a tenant and mode's customers as JSON Lines
  stickycalls import [--tenant default] [--mode prod] FILE           ... and back, into this store
  stickycalls call --from +14155551234 --to +18005550100 [--digits 1 | --speech "Uh, yes."] [--duration 42] [--dial-status no-answer] [--url http://localhost:8080]
  stickycalls health [--url http://127.0.0.1:8080/readyz]   exit 0 when ready (container health checks)
  stickycalls simulate [--seed 1] [--customers 10000] [--calls 50000] [--out docs/RECOGNITION.md] [--url URL --key KEY]   measure recognition on a generated call history
  stickycalls bench [--quick] [--customers 10000,1000000] [--out docs/PERFORMANCE.md]   measure against a Redis floor
`

// run is the whole program; main only turns its error into an exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return service.Serve(ctx, getenv, stdout)
	case "keys":
		return keysCommand(ctx, args, getenv, stdout)
	case "export":
		return exportCmd(ctx, args, getenv, stdout, stderr)
	case "import":
		return importCmd(ctx, args, getenv, stdout)
	case "call":
		return call(ctx, args, getenv, stdout)
	case "health":
		return health(ctx, args)
	case "simulate":
		return simulation(ctx, args, getenv, stdout)
	case "bench":
		return bench.Run(ctx, args, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
