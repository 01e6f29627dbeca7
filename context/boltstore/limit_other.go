//go:build !linux

package boltstore

// addressLimit is read on Linux only; elsewhere Open falls back to bbolt's
// own map if the first one does not fit (see Open).
func addressLimit() int64 { return 0 }
