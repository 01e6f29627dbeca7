package boltstore

import (
	"math"

	"golang.org/x/sys/unix"
)

// addressLimit is the process's address-space limit in bytes (RLIMIT_AS,
// `ulimit -v`), or 0 when it has none.
func addressLimit() int64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_AS, &rl); err != nil || rl.Cur == unix.RLIM_INFINITY {
		return 0
	}
	return int64(min(rl.Cur, math.MaxInt64))
}
