package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/stickycalls/stickycalls/context/childproc"
)

// TestUsedMemory checks that a Redis's size comes with its key tables'
// part and its keys, which grownBy charges by the key: a reply it could
// not read would leave them zero and the bench charging whole doublings.
func TestUsedMemory(t *testing.T) {
	ctx := context.Background()
	r, err := startRedis(ctx, childproc.NewSpawner(), t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.stop()
	const keys = 5000
	p := r.rdb.Pipeline()
	for i := range keys {
		p.Set(ctx, fmt.Sprint("k", i), "v", 0)
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	s := r.usedMemory(ctx)
	if perKey := float64(s.tables) / keys; s.keys != keys || s.bytes <= s.tables || perKey < 24 || perKey > 100 {
		t.Errorf("usedMemory = %+v (%.0f B of tables per key), want %d keys and their tables at 24 to 100 B each", s, perKey, keys)
	}
}
