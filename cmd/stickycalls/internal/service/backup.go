package service

import (
	"context"
	"io"
	"time"

	"github.com/stickycalls/stickycalls/context/backup"
	"github.com/stickycalls/stickycalls/context/callcontext"
)

// portableStore is a store a scope can be exported from and imported into:
// both stores are.
type portableStore interface {
	backup.Source
	backup.Sink
}

// Backup exports and imports a scope of one store (the admin routes'
// httpapi.Backup, and the CLI's when it works on the store itself).
type Backup struct {
	store portableStore
	now   func() time.Time
}

// NewBackup is the backup of be's store, or nil when it cannot have one.
func NewBackup(be Backend, now func() time.Time) *Backup {
	p, ok := be.Store.(portableStore)
	if !ok {
		return nil
	}
	return &Backup{store: p, now: now}
}

// Export writes sc's customers and line types as JSON Lines.
func (b *Backup) Export(ctx context.Context, sc callcontext.Scope, w io.Writer) (backup.Counts, error) {
	return backup.Export(ctx, b.store, sc, b.now(), w)
}

// Import reads a whole export and writes it into want's scope, whose empty
// fields take the file's (see backup.File.Scope).
func (b *Backup) Import(ctx context.Context, want callcontext.Scope, r io.Reader) (backup.Counts, error) {
	f, err := backup.Read(r)
	if err != nil {
		return backup.Counts{}, err
	}
	sc, err := f.Scope(want)
	if err != nil {
		return backup.Counts{}, err
	}
	return backup.Import(ctx, b.store, sc, f, b.now())
}
