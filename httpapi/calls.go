package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
)

const maxIdempotencyKey = 255

// idempotencyKey reads the Idempotency-Key header.
func idempotencyKey(r *http.Request) (string, error) {
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey {
		return "", &callapi.ValidationError{Issues: []callapi.Issue{
			{Path: []string{"headers", "Idempotency-Key"}, Message: "at most 255 characters"}}}
	}
	return key, nil
}

// reply writes a start or end body, marking replays.
func reply[T callapi.StartResult | callapi.EndResult](w http.ResponseWriter, rep callcontext.Reply[T]) {
	if rep.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeRaw(w, http.StatusOK, rep.Body)
}

func handleCallStart(calls *callcontext.Service, m *metrics) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, err := readBody(w, r, smallBody)
		if err != nil {
			return err
		}
		key, keyErr := idempotencyKey(r)
		req, err := callapi.ParseStart(body)
		if err = joinIssues(err, keyErr); err != nil {
			m.refusals(scopeOf(r.Context()), err)
			return err
		}
		noteCall(r.Context(), req.CallID, req.Hints.ANI)
		ctx, cancel := writeContext(r)
		defer cancel()
		rep, err := calls.Start(ctx, scopeOf(r.Context()), req, key)
		if err != nil {
			m.refusals(scopeOf(r.Context()), err)
			return err
		}
		m.replay(rep.Replayed)
		reply(w, rep)
		return nil
	}
}

func handleCallEnd(calls *callcontext.Service, m *metrics) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, err := readBody(w, r, endBody)
		if err != nil {
			return err
		}
		key, keyErr := idempotencyKey(r)
		req, err := callapi.ParseEnd(body)
		if err = joinIssues(err, keyErr); err != nil {
			m.refusals(scopeOf(r.Context()), err)
			return err
		}
		noteCall(r.Context(), req.CallID, "")
		ctx, cancel := writeContext(r)
		defer cancel()
		rep, err := calls.End(ctx, scopeOf(r.Context()), req, key)
		if err != nil {
			m.refusals(scopeOf(r.Context()), err)
			return err
		}
		m.replay(rep.Replayed)
		reply(w, rep)
		return nil
	}
}

// writeTimeout bounds a write that runs on after its client went away.
const writeTimeout = 10 * time.Second

// writeContext is the context of a start's or end's store work once its
// body has been read and validated: detached from the client's, so a
// client that goes away (a timeout, a dropped connection) does not leave
// the write half done, and its retry gets the replay rather than a 409
// from the unfinished lease; bounded by writeTimeout instead.
func writeContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), writeTimeout)
}

// joinIssues merges the issues of two validation errors into one list.
func joinIssues(errs ...error) error {
	var all callapi.ValidationError
	for _, err := range errs {
		var v *callapi.ValidationError
		if errors.As(err, &v) {
			all.Issues = append(all.Issues, v.Issues...)
		} else if err != nil {
			return err
		}
	}
	if len(all.Issues) == 0 {
		return nil
	}
	return &all
}

func handleCallGet(calls *callcontext.Service) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		call, err := calls.Call(r.Context(), scopeOf(r.Context()), r.PathValue("call_id"))
		if err == nil && !call.Started {
			err = callcontext.ErrNotFound // an end without a start: nothing to show
		}
		if err != nil {
			return err
		}
		body, err := call.JSON()
		if err != nil {
			return err
		}
		writeRaw(w, http.StatusOK, body)
		return nil
	}
}

func handleCustomerGet(calls *callcontext.Service) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := calls.Customer(r.Context(), scopeOf(r.Context()), r.PathValue("customer_ref"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, v)
		return nil
	}
}

func handleCustomerDelete(calls *callcontext.Service) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := calls.Erase(r.Context(), scopeOf(r.Context()), r.PathValue("customer_ref")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func handleUsage(calls *callcontext.Service) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := calls.Usage(r.Context(), scopeOf(r.Context()))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, v)
		return nil
	}
}

func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

func handleReadyz(calls *callcontext.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if err := calls.Ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}
