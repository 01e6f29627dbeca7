package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/stickycalls/stickycalls/config"
	"github.com/stickycalls/stickycalls/context/boltstore"
	"github.com/stickycalls/stickycalls/context/callcontext"
)

// keys runs the keys subcommands against the configured store.
func keys(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("keys: want create, list or revoke")
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	// A server holds the embedded store's file; fail at once, not after a wait.
	be, err := openStore(ctx, cfg, 200*time.Millisecond)
	if errors.Is(err, boltstore.ErrLocked) {
		return fmt.Errorf("keys: %s is in use by a running server; stop the server first (on Redis the CLI works beside running servers)", cfg.DataPath)
	}
	if err != nil {
		return err
	}
	defer be.close()
	greeter, err := newGreeter(cfg)
	if err != nil {
		return err
	}
	calls, err := newService(cfg, be.store, greeter, callcontext.NoLookup{}, time.Now)
	if err != nil {
		return err
	}
	switch args[0] {
	case "create":
		return keysCreate(ctx, calls, args[1:], stdout)
	case "list":
		return keysList(ctx, calls, stdout)
	case "revoke":
		if len(args) != 2 {
			return errors.New("keys revoke: want one KEY_ID")
		}
		if err := calls.RevokeKey(ctx, args[1]); err != nil {
			return fmt.Errorf("keys revoke %s: %w", args[1], err)
		}
		fmt.Fprintf(stdout, "revoked %s\n", args[1])
		return nil
	}
	return fmt.Errorf("keys: unknown subcommand %q", args[0])
}

func keysCreate(ctx context.Context, calls *callcontext.Service, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("keys create", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	tenant := fs.String("tenant", config.DefaultTenant, "tenant the key belongs to")
	mode := fs.String("mode", "test", "test or prod")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("keys create: %w", err)
	}
	secret, k, err := calls.CreateKey(ctx, *tenant, callcontext.Mode(*mode))
	if err != nil {
		return fmt.Errorf("keys create: %w", err)
	}
	fmt.Fprintf(stdout, "%s\t%s\t%s\n%s\n(the key is shown only once)\n", k.ID, k.Tenant, k.Mode, secret)
	return nil
}

func keysList(ctx context.Context, calls *callcontext.Service, stdout io.Writer) error {
	keys, err := calls.Keys(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTENANT\tMODE\tCREATED\tLAST USE\tKEY\tSTATUS")
	for _, k := range keys {
		status := "active"
		if !k.Revoked.IsZero() {
			status = "revoked " + callcontext.Timestamp(k.Revoked)
		}
		last := "never"
		if !k.LastUsed.IsZero() {
			last = callcontext.Timestamp(k.LastUsed)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s...\t%s\n", k.ID, k.Tenant, k.Mode, callcontext.Timestamp(k.Created), last, k.Prefix, status)
	}
	return tw.Flush()
}
