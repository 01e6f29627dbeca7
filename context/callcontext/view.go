package callcontext

import (
	"time"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/storage"
)

func optTimestamp(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := callapi.Timestamp(t)
	return &s
}

// secondsLeft is the whole seconds until expires, rounded up, so a value
// written with a 30-day life shows 2592000 at once.
func secondsLeft(expires, now time.Time) int64 {
	return int64((expires.Sub(now) + time.Second - 1) / time.Second)
}

func intentViews(r *storage.Record) []callapi.IntentView {
	out := []callapi.IntentView{}
	for _, in := range r.Intents {
		out = append(out, callapi.IntentView{Intent: in.Name, Status: "open", AttemptCount: in.Attempts,
			OpenedAt: callapi.Timestamp(in.Opened), LastCallAt: callapi.Timestamp(in.LastCall)})
	}
	return out
}
