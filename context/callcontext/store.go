package callcontext

import (
	"context"
	"time"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/storage"
)

// Store keeps customers, calls, keys and usage. Each method is one atomic
// step; every method that touches customer data takes a Scope; time is always
// passed in. context/storetest defines what each promise means.
type Store interface {
	// Resolve returns the customers the hints point at, read in one step.
	Resolve(ctx context.Context, sc Scope, q storage.Query, now time.Time) (storage.Found, error)
	// Customers returns the named customers that exist; missing ones are absent.
	Customers(ctx context.Context, sc Scope, refs []string) (map[string]storage.Record, error)
	// Claim marks a start or end of a call in flight, or reports a replay,
	// a conflict, an in-flight twin or a spent quota. On Claimed it reserves
	// one request of the quota and returns the call's record (zero if none)
	// and, when the claim carries a Query, what Resolve would return for it
	// (read together with the claim, to save round trips).
	Claim(ctx context.Context, sc Scope, c storage.Claim) (storage.ClaimResult, error)
	// Release undoes a Claim whose work failed: the lease, the idempotency
	// key and the quota reservation.
	Release(ctx context.Context, sc Scope, c storage.Claim) error
	// SaveStart stores a started call's record and response, remembers the
	// ANI's line type and counts the call, clearing the start lease.
	SaveStart(ctx context.Context, sc Scope, s storage.StartCommit) error
	// CommitEnd applies an end: customer writes (each checked against its
	// version; ErrVersion if any changed), links, the call record with its
	// response and the usage count, all or nothing. ErrVersion too when
	// the other half of the call's ending committed since e.Call was read:
	// for an end, the stored call's completion is no longer e.Call's; for
	// a completion, its end.
	CommitEnd(ctx context.Context, sc Scope, e storage.EndCommit) error
	// ConfirmCall records a caller's answer to the voice confirm question on
	// the call's record. ErrNotFound if the call has no record.
	ConfirmCall(ctx context.Context, sc Scope, callID string, c storage.Confirmation) error
	// NoteCall records on the call's record what the voice webhooks
	// learned after its start: the fields of n that are not empty.
	// ErrNotFound if the call has no record.
	NoteCall(ctx context.Context, sc Scope, callID string, n storage.CallNote) error
	// LeaseStream gives holder the call's one live media stream until
	// expires, or renews holder's lease; it reports false while another
	// holder's lease is live at now.
	LeaseStream(ctx context.Context, sc Scope, callID, holder string, now, expires time.Time) (bool, error)
	// ReleaseStream ends holder's lease of the call's stream, if it has it.
	ReleaseStream(ctx context.Context, sc Scope, callID, holder string) error
	// Call returns a call record or ErrNotFound.
	Call(ctx context.Context, sc Scope, callID string) (storage.CallRecord, error)
	// Erase deletes a customer, every index entry and call record that
	// points at it. ErrNotFound if absent.
	Erase(ctx context.Context, sc Scope, ref string) error
	// Usage returns the counters of a period.
	Usage(ctx context.Context, sc Scope, period string) (storage.UsageCount, error)
	// Tallies returns the scope's hourly counts (see Tally) of the hours
	// from the one of from to the one of to, both included, oldest first;
	// an hour with nothing counted is absent.
	Tallies(ctx context.Context, sc Scope, from, to time.Time) ([]storage.HourTally, error)

	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
}

// history is what the link has seen, as the scoring reads it at now.
func linkHistory(l storage.Link, now time.Time) identity.LinkHistory {
	seen := l.Seen
	if seen.IsZero() {
		seen = l.LastCall
	}
	return identity.LinkHistory{Calls: l.Calls, Attested: l.Attested, Yes: l.Yes, Disputes: l.Disputes,
		DaysSilent: int(now.Sub(seen) / (24 * time.Hour))}
}

// outcome is how the call ended, as GET /v1/calls shows it: the phone
// network's final status, time and duration once it completed, else
// "ended" at the time of its end; "" while neither happened.
func outcome(c storage.CallRecord) (status, end string, seconds int64) {
	switch {
	case !c.Completed.IsZero():
		return c.CompletionStatus, callapi.Timestamp(c.Completed), c.CompletedDuration
	case !c.Ended.IsZero():
		return "ended", callapi.Timestamp(c.Ended), max(int64(c.Ended.Sub(c.Started)/time.Second), 0)
	}
	return "", "", 0
}

// startTier is the recommendation the call's start answered: an answer to
// the confirm question has changed Recommendation since.
func startTier(c storage.CallRecord) identity.Recommendation {
	if c.Confirmed || (c.Matched != "" && c.Recommendation == identity.Ignore) {
		return identity.Confirm
	}
	return c.Recommendation
}
