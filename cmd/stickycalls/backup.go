package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/stickycalls/stickycalls/cmd/stickycalls/internal/admin"
	"github.com/stickycalls/stickycalls/cmd/stickycalls/internal/service"
	"github.com/stickycalls/stickycalls/config"
	"github.com/stickycalls/stickycalls/context/backup"
	"github.com/stickycalls/stickycalls/context/boltstore"
	"github.com/stickycalls/stickycalls/context/callcontext"
)

// exportCmd writes a tenant and mode's recognition state as JSON Lines
// (stickycalls export [--tenant T] [--mode M] [--out FILE] [--url URL]);
// importCmd reads it back (stickycalls import [--tenant T] [--mode M]
// [--url URL] FILE). With STICKYCALLS_ADMIN_TOKEN they go through the
// running server's admin routes, else (or when no server answers) they work
// on the store, which must then be free.
func exportCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	tenant := fs.String("tenant", config.DefaultTenant, "tenant")
	mode := fs.String("mode", "prod", "test or prod")
	out := fs.String("out", "", "file to write (default: standard output)")
	url := fs.String("url", "", "the running server (default: the local STICKYCALLS_ADDR)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer f.Close()
		w = f
	}
	sc := callcontext.Scope{Tenant: *tenant, Mode: callcontext.Mode(*mode)}
	return withBackup(ctx, getenv, *url, "export", func(b httpBackup) error {
		c, err := b.Export(ctx, sc, w)
		if err == nil {
			fmt.Fprintf(stderr, "exported %d customers and %d line types of %s/%s\n", c.Customers, c.LineTypes, sc.Tenant, sc.Mode)
		}
		return err
	})
}

func importCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	tenant := fs.String("tenant", "", "tenant (default: the file's; another is refused)")
	mode := fs.String("mode", "", "test or prod (default: the file's; another is refused)")
	url := fs.String("url", "", "the running server (default: the local STICKYCALLS_ADDR)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if fs.NArg() != 1 {
		return errors.New("import: want one FILE (an export)")
	}
	sc := callcontext.Scope{Tenant: *tenant, Mode: callcontext.Mode(*mode)}
	return withBackup(ctx, getenv, *url, "import", func(b httpBackup) error {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return err
		}
		defer f.Close()
		c, err := b.Import(ctx, sc, f)
		if err == nil {
			fmt.Fprintf(stdout, "imported %d customers and %d line types (%d unchanged, %d expired)\n",
				c.Customers, c.LineTypes, c.Unchanged, c.Expired)
		}
		return err
	})
}

// httpBackup is what the backup commands need: the store's, or a server's.
type httpBackup interface {
	Export(ctx context.Context, sc callcontext.Scope, w io.Writer) (backup.Counts, error)
	Import(ctx context.Context, sc callcontext.Scope, r io.Reader) (backup.Counts, error)
}

// withBackup runs do with the running server's backup when the admin token
// is set and a server answers, else with the store's.
func withBackup(ctx context.Context, getenv func(string) string, url, what string, do func(httpBackup) error) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	if cfg.AdminToken != "" {
		c := admin.NewClient(&http.Client{Timeout: 0}, cmpOr(url, localURL(cfg.Addr)), cfg.AdminToken)
		if err := c.Ping(ctx); !errors.Is(err, admin.ErrNoServer) {
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			if err := do(c); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			return nil
		}
	}
	be, err := service.OpenStore(ctx, cfg, 200*time.Millisecond)
	if errors.Is(err, boltstore.ErrLocked) {
		return fmt.Errorf("%s: %s is in use by a running server: set STICKYCALLS_ADMIN_TOKEN to the server's admin token "+
			"(and --url if it does not listen on %s) to go through it, or stop the server", what, cfg.DataPath, localURL(cfg.Addr))
	}
	if err != nil {
		return err
	}
	defer be.Close()
	b := service.NewBackup(be, time.Now)
	if b == nil {
		return fmt.Errorf("%s: the %s store cannot be exported", what, be.Name)
	}
	if err := do(b); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
