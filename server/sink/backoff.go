package sink

import (
	"math/rand/v2"
	"time"
)

// backoff is the wait before the n-th retry (n from 0): a random wait
// between lo and a ceiling that doubles with each failure up to hi (full
// jitter above the floor, so that sinks failing together spread out).
func backoff(n int, lo, hi time.Duration) time.Duration {
	ceil := lo
	for i := 0; i < n && ceil < hi; i++ {
		ceil *= 2
	}
	ceil = min(ceil, hi)
	if ceil <= lo {
		return lo
	}
	return lo + rand.N(ceil-lo+1)
}
