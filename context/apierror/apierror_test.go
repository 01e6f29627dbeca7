package apierror_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/stickycalls/stickycalls/context/apierror"
	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/keys"
	"github.com/stickycalls/stickycalls/context/storage"
)

// Every domain error has its §6 status, wrapped or not; an unknown error
// is a 500 that says nothing of its cause.
func TestStatus(t *testing.T) {
	invalid := &callapi.ValidationError{Issues: []callapi.Issue{{Path: []string{"call_id"}, Message: "required"}}}
	tests := []struct {
		err  error
		want int
	}{
		{invalid, 400},
		{keys.ErrBadKey, 401},
		{callcontext.ErrOverQuota, 402},
		{callcontext.ErrNotFound, 404},
		{callcontext.ErrConflict, 409},
		{callcontext.ErrInFlight, 409},
		{callcontext.ErrKeyReused, 422},
		{callcontext.ErrUnavailable, 503},
		{storage.ErrVersion, 503},
		{errors.New("disk on fire at /var/lib"), 500},
	}
	for _, tc := range tests {
		for _, err := range []error{tc.err, fmt.Errorf("commit end: %w", tc.err)} {
			status, body := apierror.Of(err)
			if status != tc.want {
				t.Errorf("Of(%v) status = %d, want %d", err, status, tc.want)
			}
			if status == 500 && body.Message != "internal error" {
				t.Errorf("Of(%v) message = %q, want no cause", err, body.Message)
			}
		}
	}
	_, body := apierror.Of(fmt.Errorf("parse: %w", invalid))
	got, _ := json.Marshal(body)
	if want := `{"error":"Bad Request","message":"Validation failed","details":{"issues":[{"path":["call_id"],"message":"required"}]}}`; string(got) != want {
		t.Errorf("validation body = %s, want %s", got, want)
	}
}
