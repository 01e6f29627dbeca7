package callcontext

import (
	"context"
	"fmt"
	"time"

	"github.com/stickycalls/stickycalls/context/tally"
)

// Summary reads the scope's counts of the 30 days before now and sums them.
func (s *Service) Summary(ctx context.Context, sc Scope) (tally.Summary, error) {
	now := s.now().UTC()
	to := now.Truncate(time.Hour)
	hours, err := s.store.Tallies(ctx, sc, to.Add(-30*24*time.Hour+time.Hour), to)
	if err != nil {
		return tally.Summary{}, fmt.Errorf("read tallies: %w", err)
	}
	return tally.Summarize(hours, now), nil
}
