package voice

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/stickycalls/stickycalls/context/callcontext"
)

// streamLease keeps a call to one live media stream: a lease in the store,
// which every instance behind a load balancer sees, renewed while the
// stream runs; and a lease in this process, which holds on its own while
// the store is down.
type streamLease struct {
	calls  *callcontext.Service
	local  *localLeases
	scope  callcontext.Scope
	callID string
	holder string
	ttl    time.Duration
	store  bool // the store granted the lease
}

// localLeases are the streams open in this process, by tenant and call.
type localLeases struct {
	mu   sync.Mutex
	open map[[2]string]string // {tenant, call id} → holder
}

func newLocalLeases() *localLeases { return &localLeases{open: map[[2]string]string{}} }

// take gives holder the call's stream unless another holder has it here.
func (l *localLeases) take(tenant, callID, holder string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := [2]string{tenant, callID}
	if h, ok := l.open[k]; ok && h != holder {
		return false
	}
	l.open[k] = holder
	return true
}

func (l *localLeases) drop(tenant, callID, holder string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if k := [2]string{tenant, callID}; l.open[k] == holder {
		delete(l.open, k)
	}
}

// leaseStream takes the call's stream for a new holder, or reports
// errDuplicate when another stream of the call is open here or, as the
// store says, elsewhere. A store that cannot answer before ctx is done
// leaves the process's lease alone in charge.
func leaseStream(ctx context.Context, calls *callcontext.Service, local *localLeases, sc callcontext.Scope, callID string, lim RelayLimits) (*streamLease, bool, error) {
	var b [8]byte
	rand.Read(b[:])
	l := &streamLease{calls: calls, local: local, scope: sc, callID: callID, holder: hex.EncodeToString(b[:]), ttl: lim.Lease}
	if !local.take(sc.Tenant, callID, l.holder) {
		return nil, false, errDuplicate
	}
	ok, err := calls.LeaseStream(ctx, sc, callID, l.holder, l.ttl)
	switch {
	case err != nil:
		return l, false, nil
	case !ok:
		local.drop(sc.Tenant, callID, l.holder)
		return nil, false, errDuplicate
	}
	l.store = true
	return l, true, nil
}

// keep renews the store's lease until done is closed (a renewal that fails
// is tried again at the next tick; the lease outlives two missed ones).
func (l *streamLease) keep(done <-chan struct{}, lim RelayLimits) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), lim.Store)
			l.calls.LeaseStream(ctx, l.scope, l.callID, l.holder, l.ttl)
			cancel()
		}
	}
}

// release ends the lease in the process and in the store.
func (l *streamLease) release(lim RelayLimits) {
	l.local.drop(l.scope.Tenant, l.callID, l.holder)
	ctx, cancel := context.WithTimeout(context.Background(), lim.Store)
	defer cancel()
	l.calls.ReleaseStream(ctx, l.scope, l.callID, l.holder) // else it expires by itself
}
