package callcontext

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/storage"
	"github.com/stickycalls/stickycalls/context/tally"
)

// Answer is a caller's answer to the confirm question.
type Answer string

// Answers.
const (
	AnswerYes  Answer = "yes"
	AnswerNo   Answer = "no"
	AnswerNone Answer = "none" // nothing was heard, or nothing clear
)

// Confirm records the caller's answer to "Am I speaking with ...?" on a
// call that started at confirm. Yes continues as reuse with the matched
// customer; anything else continues as a new caller's call under a fresh
// ref, so neither an end without a customer_ref nor the completion links
// the ANI to the guessed customer. A no is also remembered as a dispute of
// the guessed customer's link when the call completes or ends. It returns
// the start result as the call now stands.
func (s *Service) Confirm(ctx context.Context, sc Scope, callID string, a Answer) (callapi.StartResult, error) {
	call, err := s.store.Call(ctx, sc, callID)
	if err != nil {
		return callapi.StartResult{}, fmt.Errorf("read call: %w", err)
	}
	if len(call.StartResponse) == 0 || call.Started.IsZero() {
		return callapi.StartResult{}, ErrNotFound
	}
	if call.Recommendation != identity.Confirm {
		res, _ := s.project(call) // only a confirm-tier call can change its mind
		return res, nil
	}
	c := storage.Confirmation{Confirmed: a == AnswerYes, Denied: a == AnswerNo, CustomerRef: call.CustomerRef, Recommendation: identity.Reuse,
		Tally: tally.Answer(s.now().UTC(), string(a))}
	if a != AnswerYes {
		c.CustomerRef, c.Recommendation = s.newRef(), identity.Ignore
	}
	if err := s.store.ConfirmCall(ctx, sc, callID, c); err != nil {
		return callapi.StartResult{}, fmt.Errorf("confirm call: %w", err)
	}
	s.observer.Answered(a)
	call.Confirmed, call.Denied, call.CustomerRef, call.Recommendation = c.Confirmed, c.Denied, c.CustomerRef, c.Recommendation
	res, _ := s.project(call)
	return res, nil
}

// project decodes a call's stored start, projects it onto the call's
// present recommendation, and reports whether a confirm answer since has
// changed it.
func (s *Service) project(call storage.CallRecord) (callapi.StartResult, bool) {
	var res callapi.StartResult
	if json.Unmarshal(call.StartResponse, &res) != nil {
		return res, false
	}
	res.DNIS = call.DNIS
	if res.Match != nil {
		res.Name = res.Match.Variables["name"]
	}
	if call.Recommendation == "" || res.Identity.Recommendation == call.Recommendation {
		return res, false
	}
	res.CustomerRef, res.Identity.Recommendation = call.CustomerRef, call.Recommendation
	if call.Recommendation == identity.Ignore {
		res.Match, res.Confidence, res.Name = nil, nil, ""
		res.OpenIntents, res.Variables = []callapi.IntentView{}, map[string]callapi.VariableView{}
		res.Identity.Confidence, res.Identity.Level = 0, identity.Low
		res.Identity.Sources, res.Identity.Candidates = []string{}, []callapi.Candidate{}
		res.Billable = true
	}
	res.Greeting = s.greeter.Greet(&res)
	return res, true
}

// Final call statuses Twilio reports.
const StatusCompleted = "completed"

// Completion is the end of a call as the phone network reports it.
type Completion struct {
	CallID string
	Status string // Twilio's final CallStatus: completed, busy, failed, no-answer, canceled
	// Duration is Twilio's CallDuration in seconds; negative when unknown,
	// then measured from the start.
	Duration int64
	// At is when the network reported it (the status callback arrived),
	// which a completion applied later from the outbox keeps; zero: now.
	At time.Time
}

// Complete records the end of a call as the phone network reports it, as
// of c.At. On "completed", for a call of at least the minimum length, it
// links the ANI:
// to the start's customer if the start was reuse or a confirmed confirm; to
// a new customer (the call's fresh ref) if the ANI had no link at all;
// otherwise to nobody. Other statuses record the end only. It is
// idempotent, and never overrides an end that came first.
func (s *Service) Complete(ctx context.Context, sc Scope, c Completion) error {
	now := c.At.UTC()
	if c.At.IsZero() {
		now = s.now().UTC()
	}
	return s.retryVersion(ctx, sc, c.CallID, func() error { return s.complete(ctx, sc, c.CallID, c.Status, c.Duration, now) })
}

func (s *Service) complete(ctx context.Context, sc Scope, callID, status string, duration int64, now time.Time) error {
	call, err := s.store.Call(ctx, sc, callID)
	if err != nil {
		return fmt.Errorf("read call: %w", err)
	}
	if !call.Completed.IsZero() {
		return nil // Twilio's retries are harmless
	}
	if duration < 0 {
		duration = max(int64(now.Sub(call.Started)/time.Second), 0)
	}
	call.Completed, call.CompletionStatus, call.CompletedDuration = now, status, duration
	commit := storage.EndCommit{Call: call, Completion: true}
	ref := s.completionTarget(call)
	// A call shorter than MinCall was no conversation (a robocall, a
	// misdial): it links nothing and creates nobody.
	conversation := status == StatusCompleted && time.Duration(duration)*time.Second >= s.d.MinCall
	if conversation && call.Ended.IsZero() && call.ANI != "" && ref != "" {
		created, made, err := s.linkCompletion(ctx, sc, &commit, ref, now)
		if err != nil {
			return err
		}
		if made { // a link it only refreshed is not its to move later
			commit.Call.CompletedRef, commit.Call.CompletionCreated = ref, created
		}
	}
	if conversation && call.Ended.IsZero() && call.Denied && call.Contestable && call.Matched != ref {
		if err := s.disputeCompletion(ctx, sc, &commit, now); err != nil {
			return err
		}
	}
	if err := s.store.CommitEnd(ctx, sc, commit); err != nil {
		return fmt.Errorf("commit completion: %w", err)
	}
	return nil
}

// completionTarget is the customer a completed call may link its ANI to:
// the start's on reuse or a confirmed confirm, else the call's own fresh
// ref (linked only when the ANI has no link at all).
func (s *Service) completionTarget(call storage.CallRecord) string {
	if call.Recommendation == identity.Confirm && !call.Confirmed {
		return ""
	}
	return call.CustomerRef
}

// linkCompletion adds the customer write and index link of a completion.
// It reports whether it created the customer and whether it made the link
// (rather than refreshing one the customer had).
func (s *Service) linkCompletion(ctx context.Context, sc Scope, commit *storage.EndCommit, ref string, now time.Time) (created, made bool, err error) {
	found, err := s.store.Resolve(ctx, sc, storage.Query{ANI: commit.Call.ANI, CustomerRef: ref}, now)
	if err != nil {
		return false, false, fmt.Errorf("resolve: %w", err)
	}
	r, exists := found.Customers[ref]
	// A completion retried after a failure past the customer's write (the
	// call record not marked) is applied already: it only marks the call.
	if i := slices.IndexFunc(r.Calls, func(c storage.CallRef) bool { return c.ID == commit.Call.ID && c.Completed }); exists && i >= 0 {
		return r.Calls[i].Created, r.Calls[i].Linked, nil
	}
	known := len(lineRefs(found, commit.Call.ANI, now, liveIn(found, now))) > 0
	if commit.Call.Recommendation == identity.Ignore && known {
		return false, false, nil // an unrecognized call on a known line does not multiply customers
	}
	prev := r.Version
	created = !exists || !alive(&r, now)
	if created {
		r = storage.Record{Ref: ref, Created: now, Version: prev}
	}
	made = !r.ANIs[commit.Call.ANI].Expires.After(now)
	prune(&r, now, s.d)
	// A completion applied late (from the outbox) never moves a time the
	// customer or the link has since back.
	old := r.ANIs[commit.Call.ANI]
	link := storage.Link{LastCall: later(old.LastCall, now), Expires: later(old.Expires, now.Add(s.d.LinkTTL))}
	linkTo(&r, commit.Call.ANI, nil, link)
	witness(&r, commit.Call.ANI, commit.Call, commit.Call.Confirmed && ref == commit.Call.Matched, s.policy(sc.Tenant).Thresholds, now)
	if seen := r.ANIs[commit.Call.ANI]; seen.Seen.Before(old.Seen) {
		seen.Seen = old.Seen
		r.ANIs[commit.Call.ANI] = seen
	}
	if r.FirstCall.IsZero() {
		r.FirstCall = now
	}
	r.LastCall = later(r.LastCall, now)
	r.Calls = append(r.Calls, storage.CallRef{ID: commit.Call.ID, At: now, Completed: true, Created: created, Linked: made})
	prune(&r, now, s.d)
	r.Version = prev + 1
	commit.Writes = append(commit.Writes, storage.Write{Record: r, Prev: prev})
	commit.ANILinks = append(commit.ANILinks, storage.ANILink{ANI: commit.Call.ANI, Ref: ref, Link: link})
	return created, made, nil
}

// later is the later of two times.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// disputeCompletion records a caller's "no" against the link of the
// customer the start guessed, as the call completes without an end.
func (s *Service) disputeCompletion(ctx context.Context, sc Scope, commit *storage.EndCommit, now time.Time) error {
	ref := commit.Call.Matched
	got, err := s.store.Customers(ctx, sc, []string{ref})
	if err != nil {
		return fmt.Errorf("read customer: %w", err)
	}
	r, ok := got[ref]
	if !ok || !alive(&r, now) {
		return nil
	}
	prev := r.Version
	disputeLink(&r, commit.Call.ANI, commit.Call.ID, now)
	prune(&r, now, s.d)
	r.Version = prev + 1
	// The guessed customer is written first: the last write is the call's
	// own customer, if it has one.
	commit.Writes = append([]storage.Write{{Record: r, Prev: prev}}, commit.Writes...)
	return nil
}

// LeaseStream gives holder the call's one live media stream for ttl, or
// renews holder's lease; it reports false while another stream of the call
// holds it.
func (s *Service) LeaseStream(ctx context.Context, sc Scope, callID, holder string, ttl time.Duration) (bool, error) {
	now := s.now().UTC()
	ok, err := s.store.LeaseStream(ctx, sc, callID, holder, now, now.Add(ttl))
	if err != nil {
		return false, fmt.Errorf("lease stream: %w", err)
	}
	return ok, nil
}

// ReleaseStream ends holder's lease of the call's media stream.
func (s *Service) ReleaseStream(ctx context.Context, sc Scope, callID, holder string) error {
	if err := s.store.ReleaseStream(ctx, sc, callID, holder); err != nil {
		return fmt.Errorf("release stream: %w", err)
	}
	return nil
}
