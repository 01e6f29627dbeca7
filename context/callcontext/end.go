package callcontext

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/storage"
	"github.com/stickycalls/stickycalls/context/tally"
)

// Serializer is a store whose writes about one customer can be run one at
// a time in this process (the embedded store: one process, one writer
// anyway). The service holds it around an end's or a completion's reads
// and commit, so concurrent ends of one customer never conflict, while
// ends of other customers commit together. An end that also changes
// other customers may still meet a version conflict, which is retried.
type Serializer interface {
	// Serialize waits for the turn of key (what the write is about: its
	// customer, else its call) in scope sc, and returns its release; it
	// fails when ctx ends first.
	Serialize(ctx context.Context, sc Scope, key string) (release func(), err error)
}

// retryBound bounds the retries of a write that has no deadline of its own.
const retryBound = 10 * time.Second

// retryVersion runs attempt until it does not fail with ErrVersion (a
// customer changed under it: another write committed in between), within
// ctx's deadline, or retryBound when ctx has none: a count would turn
// ordinary contention into failures. Between attempts it waits a little,
// longer each time, so contending writers spread out.
func (s *Service) retryVersion(ctx context.Context, sc Scope, key string, attempt func() error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, retryBound)
		defer cancel()
	}
	for try := 0; ; try++ {
		err := s.serialized(ctx, sc, key, attempt)
		if !errors.Is(err, storage.ErrVersion) {
			return err
		}
		wait := time.Duration(rand.Int64N(int64(time.Millisecond) << min(try, 5)))
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up retrying: %v)", err, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// serialized runs attempt in key's turn when the store has turns.
func (s *Service) serialized(ctx context.Context, sc Scope, key string, attempt func() error) error {
	if ser, ok := s.store.(Serializer); ok {
		release, err := ser.Serialize(ctx, sc, key)
		if err != nil {
			return err
		}
		defer release()
	}
	return attempt()
}

// End saves what happened on a call. key is the Idempotency-Key, or "".
func (s *Service) End(ctx context.Context, sc Scope, req callapi.EndRequest, key string) (Reply[callapi.EndResult], error) {
	now := s.now().UTC()
	c := s.newClaim(sc, storage.OpEnd, req.CallID, key, callapi.Fingerprint(req), now)
	if req.CustomerRef != "" {
		// The usual end names its customer: read it with the claim.
		c.Query = &storage.Query{CustomerRef: req.CustomerRef, ExternalIDs: bodyIDs(req)}
	}
	res, err := s.claim(ctx, sc, c)
	switch {
	case err != nil:
		return Reply[callapi.EndResult]{}, err
	case res.Outcome == storage.Replay:
		return replay[callapi.EndResult](storage.OpEnd, res.Response)
	}
	found, call := &res.Found, res.Call
	var e *ending
	err = s.retryVersion(ctx, sc, cmpOr(req.CustomerRef, cmpOr(res.Call.CustomerRef, req.CallID)), func() error {
		if found == nil { // a retry reads again: a completion may have come in between
			if err := s.reread(ctx, sc, &call); err != nil {
				return err
			}
		}
		var err error
		e, err = s.end(ctx, sc, req, call, c, found)
		found = nil
		return err
	})
	if err != nil {
		// The request's deadline may be spent: the release gets its own.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		s.release(rctx, sc, c)
		return Reply[callapi.EndResult]{}, err
	}
	if e.corrected {
		s.observer.Corrected(startTier(e.call))
	}
	s.observer.Ended(sc, e.event())
	return Reply[callapi.EndResult]{Result: e.result, Body: e.body}, nil
}

// reread reads again the record of a call whose end is being retried.
// A call with no record before its end (a standalone end) keeps none.
func (s *Service) reread(ctx context.Context, sc Scope, call *storage.CallRecord) error {
	if call.ID == "" {
		return nil
	}
	got, err := s.store.Call(ctx, sc, call.ID)
	if err != nil {
		return fmt.Errorf("read call: %w", err)
	}
	*call = got
	return nil
}

// ending is what one attempt of an end has worked out.
type ending struct {
	req     callapi.EndRequest
	call    storage.CallRecord
	c       storage.Claim
	pol     Policy
	found   storage.Found
	ref     string
	anis    []string
	ids     []storage.ExternalID
	commit  storage.EndCommit
	created bool
	// transition is what the end did to its intent (see EndEvent.Intent).
	transition string
	// others are the customers besides the target that the end changes,
	// as read (prev: their versions then) and then changed; drop marks the
	// ones a completion created that may go if nothing else is left.
	others    map[string]*storage.Record
	prev      map[string]int64
	drop      map[string]bool
	corrected bool              // the end named another customer than the start recognized
	result    callapi.EndResult // the response, once committed
	body      []byte            // … encoded
}

// event is what the end saved, as counted.
func (e *ending) event() EndEvent {
	return EndEvent{Created: e.created, Billable: e.commit.Billable, Counted: e.commit.Counted, Intent: e.transition}
}

// end applies a claimed end. claimed is what the claim read, if it read
// what this end needs.
func (s *Service) end(ctx context.Context, sc Scope, req callapi.EndRequest, call storage.CallRecord, c storage.Claim, claimed *storage.Found) (*ending, error) {
	e := &ending{req: req, call: call, c: c, pol: s.policy(sc.Tenant),
		others: map[string]*storage.Record{}, prev: map[string]int64{}, drop: map[string]bool{}}
	ref, err := s.target(ctx, sc, e)
	if err != nil {
		return nil, err
	}
	e.ref = ref
	e.collectHints()
	if claimed != nil && c.Query != nil && c.Query.CustomerRef == ref && e.coveredBy(*claimed) {
		e.found = *claimed
	} else if e.found, err = s.store.Resolve(ctx, sc, storage.Query{ExternalIDs: e.ids, CustomerRef: ref}, c.Now); err != nil {
		return nil, fmt.Errorf("read customer: %w", err)
	}
	e.moveExternalIDs()
	if err := s.readOthers(ctx, sc, e); err != nil {
		return nil, err
	}
	e.moveCompletion()
	e.dispute()
	e.writeOthers(s.d)
	res, err := e.save(s.d)
	if err != nil {
		return nil, err
	}
	e.result = res
	if e.body, err = json.Marshal(res); err != nil {
		return nil, fmt.Errorf("encode end: %w", err)
	}
	e.commit.Call = e.callRecord(e.body, s.d)
	e.commit.Period = c.Period
	e.commit.Counted = call.Started.IsZero()
	e.commit.Billable = e.created
	e.commit.Tally = tally.End(c.Now, e.created, e.commit.Counted, e.commit.Billable, e.transition)
	if err := s.store.CommitEnd(ctx, sc, e.commit); err != nil {
		return nil, fmt.Errorf("commit end: %w", err)
	}
	return e, nil
}

// target picks the customer to save to: the body's ref, else the start's,
// else for a standalone end the customer its hints match at reuse, else a
// new one.
func (s *Service) target(ctx context.Context, sc Scope, e *ending) (string, error) {
	switch {
	case e.req.CustomerRef != "":
		return e.req.CustomerRef, nil
	case e.call.CustomerRef != "":
		return e.call.CustomerRef, nil
	case e.req.Hints == nil || e.req.Hints.Empty():
		v := &callapi.ValidationError{}
		v.Add("required: the call was not started, so name the customer_ref or send identity_hints", "customer_ref")
		return "", v
	}
	h := *e.req.Hints
	q := storage.Query{ANI: linkable(h.ANI, e.pol), ExternalIDs: externalIDList(h.ExternalIDs), CustomerRef: h.CustomerRef}
	found, err := s.store.Resolve(ctx, sc, q, e.c.Now)
	if err != nil {
		return "", fmt.Errorf("resolve: %w", err)
	}
	res := resolve(found, h, q.ANI, identity.AttestNone, e.pol.Thresholds, e.c.Now)
	res.Signals.LineType = cmpLine(found.ANI.LineType)
	m := identity.Assess(res.Signals, e.pol.Weights, e.pol.Thresholds)
	if m.Recommendation == identity.Reuse && res.Record != nil {
		return res.Record.Ref, nil
	}
	return cmpOr(h.CustomerRef, refFor(sc, e.req.CallID)), nil
}

// refFor is the new customer a standalone end creates: derived from the
// call, so that a retry after a failure creates the same one, not a second.
func refFor(sc Scope, callID string) string {
	sum := sha256.Sum256([]byte(sc.Tenant + "\x00" + string(sc.Mode) + "\x00" + callID))
	return "cust_" + hex.EncodeToString(sum[:12])
}

func cmpLine(lt identity.LineType) identity.LineType {
	if lt == "" {
		return identity.Unknown
	}
	return lt
}

// coveredBy reports whether what the claim read is all this end needs: the
// target customer, and the owner of every external id it links, which for
// an id the target already holds is the target itself (a returning caller's
// CRM id), so only the others had to be asked for.
func (e *ending) coveredBy(f storage.Found) bool {
	r, ok := f.Customers[e.ref]
	for _, id := range e.ids {
		held := ok && r.ExternalIDs[id.String()].Expires.After(e.c.Now)
		if !held && !slices.Contains(e.c.Query.ExternalIDs, id) {
			return false
		}
	}
	return true
}

// bodyIDs is the external ids an end's body links, sorted as collectHints
// sorts them.
func bodyIDs(req callapi.EndRequest) []storage.ExternalID {
	ids := map[string]string{}
	if req.Hints != nil {
		for k, v := range req.Hints.ExternalIDs {
			ids[k] = v
		}
	}
	for k, v := range req.ExternalIDs {
		ids[k] = v
	}
	return externalIDList(ids)
}

// collectHints gathers what the call links: the start's ANI and external
// ids, and those of this body.
func (e *ending) collectHints() {
	add := func(ani string) {
		if ani = linkable(ani, e.pol); ani != "" && !slices.Contains(e.anis, ani) {
			e.anis = append(e.anis, ani)
		}
	}
	add(e.call.ANI)
	ids := map[string]string{}
	for _, id := range e.call.ExternalIDs {
		ids[id.Key] = id.Value
	}
	if h := e.req.Hints; h != nil {
		add(h.ANI)
		for k, v := range h.ExternalIDs {
			ids[k] = v
		}
	}
	for k, v := range e.req.ExternalIDs {
		ids[k] = v
	}
	e.ids = externalIDList(ids)
}

// moveExternalIDs takes each external id away from another customer that
// holds it: an external id belongs to one customer.
func (e *ending) moveExternalIDs() {
	for _, id := range e.ids {
		owner := e.found.Owners[id.String()]
		if owner == "" || owner == e.ref {
			continue
		}
		if r := e.other(owner); r != nil {
			delete(r.ExternalIDs, id.String())
		}
	}
}

// other returns the working copy of a customer the end changes besides its
// target, taken from what was read; nil if it does not exist.
func (e *ending) other(ref string) *storage.Record {
	if r, ok := e.others[ref]; ok {
		return r
	}
	rec, ok := e.found.Customers[ref]
	if !ok {
		return nil
	}
	e.prev[ref] = rec.Version
	e.others[ref] = &rec
	return &rec
}

// readOthers reads the customers besides the target that the end may
// change and that the end's reads did not bring: the one a completion
// linked, and the one the start recognized when the end disputes it.
func (s *Service) readOthers(ctx context.Context, sc Scope, e *ending) error {
	var refs []string
	for _, ref := range []string{e.completionFrom(), e.disputed()} {
		if _, read := e.found.Customers[ref]; ref != "" && !read && !slices.Contains(refs, ref) {
			refs = append(refs, ref)
		}
	}
	if len(refs) == 0 {
		return nil
	}
	got, err := s.store.Customers(ctx, sc, refs)
	if err != nil {
		return fmt.Errorf("read customer: %w", err)
	}
	for ref, r := range got {
		e.prev[ref] = r.Version
		e.others[ref] = &r
	}
	return nil
}

// completionFrom is the customer a completion linked the ANI to, when the
// end names another: the link moves.
func (e *ending) completionFrom() string {
	if from := e.call.CompletedRef; from != e.ref && e.call.ANI != "" {
		return from
	}
	return ""
}

// moveCompletion takes the ANI link a completion made away from its
// customer when the end names another; a customer the completion created
// and that has nothing else left is removed.
func (e *ending) moveCompletion() {
	from := e.completionFrom()
	r := e.other(from)
	if from == "" || r == nil {
		return
	}
	delete(r.ANIs, e.call.ANI)
	e.drop[from] = e.call.CompletionCreated
	e.commit.ANIUnlinks = append(e.commit.ANIUnlinks, storage.ANILink{ANI: e.call.ANI, Ref: from})
}

// disputed is the customer the start recognized when this end says the
// caller was someone else: the end names another customer, or the caller
// said no to the confirm question. An agent who omits customer_ref after a
// reuse names nobody else.
func (e *ending) disputed() string {
	m := e.call.Matched
	if m == "" || m == e.ref || (e.req.CustomerRef == "" && !e.call.Denied) {
		return ""
	}
	return m
}

// dispute records the end's disagreement with the start: against the
// recognized customer's link to the ANI when the call could contest it,
// once per call; and, for the metrics, an agent's correction.
func (e *ending) dispute() {
	ref := e.disputed()
	if ref == "" {
		return
	}
	e.corrected = !e.call.Denied
	if r := e.other(ref); r != nil && e.call.Contestable {
		disputeLink(r, e.call.ANI, e.call.ID, e.c.Now)
	}
}

// writeOthers adds a write of each other customer the end changed.
func (e *ending) writeOthers(d Durations) {
	for _, ref := range slices.Sorted(maps.Keys(e.others)) {
		r := e.others[ref]
		prune(r, e.c.Now, d)
		r.Version = e.prev[ref] + 1
		gone := !alive(r, e.c.Now) || (e.drop[ref] && empty(r))
		e.commit.Writes = append(e.commit.Writes, storage.Write{Record: *r, Prev: e.prev[ref], Delete: gone})
	}
}

// save applies the end to the target customer and returns the response.
func (e *ending) save(d Durations) (callapi.EndResult, error) {
	now := e.c.Now
	r, exists := e.found.Customers[e.ref]
	prev := r.Version
	if !exists || !alive(&r, now) {
		r = storage.Record{Ref: e.ref, Created: now, Version: prev}
		e.created = true
	}
	prune(&r, now, d)
	seen := slices.ContainsFunc(r.Calls, func(c storage.CallRef) bool { return c.ID == e.req.CallID })
	held := e.call.ANI != "" && r.ANIs[e.call.ANI].Expires.After(now)
	link := storage.Link{LastCall: now, Expires: now.Add(d.LinkTTL)}
	for _, ani := range e.anis {
		linkTo(&r, ani, nil, link)
		e.commit.ANILinks = append(e.commit.ANILinks, storage.ANILink{ANI: ani, Ref: e.ref, Link: link})
	}
	// The call's own ANI learns what the call showed, once per call (a
	// completion of the call may have taught it already), unless the end
	// only fell back on a guess nobody confirmed.
	if e.call.ANI != "" && !seen && !e.unconfirmedGuess() {
		witness(&r, e.call.ANI, e.call, e.affirmed(held), e.pol.Thresholds, now)
	}
	linkTo(&r, "", e.ids, link)
	for _, id := range e.ids {
		e.commit.Owners = append(e.commit.Owners, storage.Owner{ID: id, Ref: e.ref, Expires: link.Expires})
	}
	res := callapi.EndResult{CallID: e.req.CallID, CustomerRef: e.ref, CallEnd: callapi.Timestamp(now), Billable: e.created}
	// A store that failed after writing the customer but before the call
	// record leaves the end applied; its retry must not count it again.
	i := slices.IndexFunc(r.Calls, func(c storage.CallRef) bool { return c.ID == e.req.CallID && c.Ended })
	applied := i >= 0
	if applied {
		e.created = r.Calls[i].Created // what the first attempt created is still its to bill
	}
	if e.req.Intent != "" {
		if !applied {
			e.transition = applyIntent(&r, e.req.Intent, e.req.Status, now)
		}
		res.IntentsUpdated = 1
	}
	if applied {
		res.VariablesUpdated = len(e.req.Variables)
	} else {
		res.VariablesUpdated = applyVariables(&r, e.req.Variables, e.req.CallID, now.Add(e.req.VariableTTL))
	}
	if n := len(r.Variables); n > callapi.MaxVariables {
		v := &callapi.ValidationError{}
		v.Add(fmt.Sprintf("a customer keeps at most %d variables; this end would leave %d", callapi.MaxVariables, n), "variables")
		return callapi.EndResult{}, v
	}
	if !e.call.Started.IsZero() {
		res.CallStart = optTimestamp(e.call.Started)
		res.DurationSeconds = int64(now.Sub(e.call.Started) / time.Second)
	}
	if r.FirstCall.IsZero() {
		r.FirstCall = now
	}
	r.LastCall = now
	if !applied {
		r.Calls = append(r.Calls, storage.CallRef{ID: e.req.CallID, At: now, Ended: true, Created: e.created})
	}
	prune(&r, now, d)
	r.Version = prev + 1
	gone := !alive(&r, now)
	e.commit.Writes = append(e.commit.Writes, storage.Write{Record: r, Prev: prev, Delete: gone})
	// An end that leaves nothing to remember creates no customer to bill.
	e.created = e.created && !gone
	res.Billable = e.created
	return res, nil
}

// affirmed reports whether the call confirmed that its caller is the
// target customer: a "yes" to the start's guess, an agent who was asked to
// confirm the guess and named it, or an agent who named a customer that
// the number was linked to (held) and that the start did not reuse.
func (e *ending) affirmed(held bool) bool {
	m, named := e.call.Matched, e.req.CustomerRef == e.ref
	if m != "" && m == e.ref {
		return e.call.Confirmed || (e.call.Recommendation == identity.Confirm && named)
	}
	return named && held
}

// unconfirmedGuess reports whether the end saves to the customer a
// confirm start guessed only because it named nobody: API.md §4 saves it
// there, but nothing says the caller was that customer, so the number's
// link keeps its times and learns nothing (a stranger's call must not
// make a guess look attested or lately used).
func (e *ending) unconfirmedGuess() bool {
	return e.req.CustomerRef == "" && e.ref == e.call.Matched && startTier(e.call) == identity.Confirm && !e.call.Confirmed
}

func (e *ending) callRecord(body []byte, d Durations) storage.CallRecord {
	call := e.call
	if call.ID == "" {
		call = storage.CallRecord{ID: e.req.CallID, Expires: e.c.Now.Add(d.CallRetention)}
	}
	call.Ended, call.EndPrint, call.EndResponse = e.c.Now, e.c.Fingerprint, body
	call.EndLease, call.EndLeasePrint = time.Time{}, ""
	return call
}
