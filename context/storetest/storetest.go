// Package storetest is the conformance suite every store must pass: the bbolt store and the Redis stores run the very same tests. It
// checks each Store method's promise through the interface alone, and the
// rules of API.md §2–§6 through a callcontext.Service built over the store.
// Time is always passed in, so nothing sleeps. It is imported only by
// _test.go files.
package storetest

import (
	"testing"
	"time"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/keys"
	"github.com/stickycalls/stickycalls/lookup"
)

// Store is what a store of this service does: the domain's operations
// (callcontext.Store), the API keys (keys.Store) and the cache of Lookup's
// answers that package lookup keeps in it.
type Store interface {
	callcontext.Store
	keys.Store
	lookup.Cache
}

// Run runs the suite. open must return a fresh, empty store for each
// subtest and arrange its cleanup with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) Store) {
	t.Helper()
	groups := []struct {
		name  string
		tests []storeTest
	}{
		{"Claim", claimTests()},
		{"Store", storeTests()},
		{"Service", serviceTests()},
		{"History", historyTests()},
		{"Concurrency", concurrencyTests()},
		{"Backup", backupTests()},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
			}
		})
	}
}

// storeTest is one subtest; it gets a fresh store.
type storeTest struct {
	name string
	run  func(t *testing.T, s Store)
}

const day = 24 * time.Hour

// t0 is the fixed time every test starts at.
var t0 = time.Date(2026, 2, 7, 10, 30, 0, 0, time.UTC)

// Scopes the tests use: two tenants, two modes.
var (
	acmeTest = callcontext.Scope{Tenant: "acme", Mode: callcontext.Test}
	acmeProd = callcontext.Scope{Tenant: "acme", Mode: callcontext.Prod}
	zetaTest = callcontext.Scope{Tenant: "zeta", Mode: callcontext.Test}
)
