package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stickycalls/stickycalls/cmd/stickycalls/internal/admin"
	"github.com/stickycalls/stickycalls/cmd/stickycalls/internal/service"
	"github.com/stickycalls/stickycalls/config"
	"github.com/stickycalls/stickycalls/context/boltstore"
	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/keys"
)

// keysCommand runs the keys subcommands. With STICKYCALLS_ADMIN_TOKEN set they
// go through the running server's admin routes (--url, default the local
// address), so keys are managed without stopping it; when no server
// answers, or without a token, they work on the configured store.
func keysCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	args, url := cutFlag(args, "url")
	if len(args) == 0 {
		return errors.New("keys: want create, list or revoke")
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	if cfg.AdminToken != "" {
		c := admin.NewClient(&http.Client{Timeout: 10 * time.Second}, cmpOr(url, localURL(cfg.Addr)), cfg.AdminToken)
		if err := keysVia(ctx, c, args, stdout); !errors.Is(err, admin.ErrNoServer) {
			return err
		}
	}
	// A server holds the embedded store's file; fail at once, not after a wait.
	be, err := service.OpenStore(ctx, cfg, 200*time.Millisecond)
	if errors.Is(err, boltstore.ErrLocked) {
		return fmt.Errorf("keys: %s is in use by a running server: set STICKYCALLS_ADMIN_TOKEN to the server's admin token "+
			"(and --url if it does not listen on %s) to manage keys through it, or stop the server", cfg.DataPath, localURL(cfg.Addr))
	}
	if err != nil {
		return err
	}
	defer be.Close()
	return keysVia(ctx, be.Keys(), args, stdout)
}

// keyManager is where keys are managed: the store (through its keyring),
// or a running server (through its admin routes).
type keyManager interface {
	Create(ctx context.Context, tenant string, mode callcontext.Mode) (string, keys.Key, error)
	List(ctx context.Context) ([]keys.Key, error)
	Revoke(ctx context.Context, id string) error
}

// keysVia runs one keys subcommand with m.
func keysVia(ctx context.Context, m keyManager, args []string, stdout io.Writer) error {
	switch args[0] {
	case "create":
		return keysCreate(ctx, m, args[1:], stdout)
	case "list":
		all, err := m.List(ctx)
		if err != nil {
			return fmt.Errorf("keys list: %w", err)
		}
		return keysList(all, stdout)
	case "revoke":
		if len(args) != 2 {
			return errors.New("keys revoke: want one KEY_ID")
		}
		if err := m.Revoke(ctx, args[1]); err != nil {
			return fmt.Errorf("keys revoke %s: %w", args[1], err)
		}
		fmt.Fprintf(stdout, "revoked %s\n", args[1])
		return nil
	}
	return fmt.Errorf("keys: unknown subcommand %q", args[0])
}

// cutFlag removes --name VALUE or --name=VALUE from anywhere in args and
// returns the rest and the value.
func cutFlag(args []string, name string) ([]string, string) {
	var rest []string
	value := ""
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--"+name || a == "-"+name:
			if i+1 < len(args) {
				value = args[i+1]
				i++
			}
		case strings.HasPrefix(a, "--"+name+"=") || strings.HasPrefix(a, "-"+name+"="):
			_, value, _ = strings.Cut(a, "=")
		default:
			rest = append(rest, a)
		}
	}
	return rest, value
}

// localURL is the URL of a server listening on addr on this machine.
func localURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://localhost:8080"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func keysCreate(ctx context.Context, m keyManager, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("keys create", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	tenant := fs.String("tenant", config.DefaultTenant, "tenant the key belongs to")
	mode := fs.String("mode", "test", "test or prod")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("keys create: %w", err)
	}
	secret, k, err := m.Create(ctx, *tenant, callcontext.Mode(*mode))
	if err != nil {
		return fmt.Errorf("keys create: %w", err)
	}
	fmt.Fprintf(stdout, "%s\t%s\t%s\n%s\n(the key is shown only once)\n", k.ID, k.Tenant, k.Mode, secret)
	return nil
}

func keysList(all []keys.Key, stdout io.Writer) error {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTENANT\tMODE\tCREATED\tLAST USE\tKEY\tSTATUS")
	for _, k := range all {
		status := "active"
		if !k.Revoked.IsZero() {
			status = "revoked " + callapi.Timestamp(k.Revoked)
		}
		last := "never"
		if !k.LastUsed.IsZero() {
			last = callapi.Timestamp(k.LastUsed)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s...\t%s\n", k.ID, k.Tenant, k.Mode, callapi.Timestamp(k.Created), last, k.Prefix, status)
	}
	return tw.Flush()
}
