package ajwt

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"net/http"
	"sync"
	"time"
)

// MemoryReplayCache is an in-memory ReplayCache with a fixed capacity. It never evicts
// an entry before its expiry: when every slot holds a live entry, Insert fails with
// replay_cache_full (503, Retry-After) instead of forgetting a proof that could then be
// replayed.
type MemoryReplayCache struct {
	mu        sync.Mutex
	capacity  int
	entries   map[string]time.Time
	lastSweep time.Time
}

// NewMemoryReplayCache returns a cache holding at most capacity live proofs. Size it as
// the peak accepted proofs per second times DPoPReplayWindow.
func NewMemoryReplayCache(capacity int) *MemoryReplayCache {
	if capacity <= 0 {
		capacity = 1
	}
	return &MemoryReplayCache{capacity: capacity, entries: make(map[string]time.Time, min(capacity, 1<<16))}
}

// ReplayCacheFull is the error returned when the cache has no room.
func ReplayCacheFull() *Error {
	e := NewError(http.StatusServiceUnavailable, CodeTemporarilyUnavail, ReasonReplayCacheFull, "DPoP replay cache is full; retry shortly")
	e.RetryAfter = 1
	return e
}

// Insert implements ReplayCache.
func (c *MemoryReplayCache) Insert(_ context.Context, jkt, jti string, exp, now time.Time) error {
	key := jkt + "\x00" + jti
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		if now.Before(e) {
			return dpopErr(ReasonDPoPReplay, "DPoP proof was already used")
		}
		delete(c.entries, key)
	}
	if len(c.entries) >= c.capacity {
		// Sweep expired entries at most once per second so a flood of proofs while full
		// costs O(1) each, not O(capacity).
		if now.Sub(c.lastSweep) >= time.Second {
			c.lastSweep = now
			for k, e := range c.entries {
				if !now.Before(e) {
					delete(c.entries, k)
				}
			}
		}
		if len(c.entries) >= c.capacity {
			return ReplayCacheFull()
		}
	}
	c.entries[key] = exp
	return nil
}

// Len returns the number of entries held (live or not yet swept).
func (c *MemoryReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// WindowNonce is a NonceChecker whose nonce is an HMAC of the current time window; the
// nonce of the previous window stays valid so a client racing a window change succeeds
// on its retry.
type WindowNonce struct {
	Secret []byte
	Window time.Duration
	Now    func() time.Time
}

func (n *WindowNonce) at(w int64) string {
	m := hmac.New(sha256.New, n.Secret)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(w))
	m.Write(b[:])
	return b64.EncodeToString(m.Sum(nil)[:18])
}

func (n *WindowNonce) window() int64 {
	now := time.Now()
	if n.Now != nil {
		now = n.Now()
	}
	w := n.Window
	if w <= 0 {
		w = time.Minute
	}
	return now.UnixNano() / int64(w)
}

// Current implements NonceChecker.
func (n *WindowNonce) Current() string { return n.at(n.window()) }

// Valid implements NonceChecker.
func (n *WindowNonce) Valid(nonce string) bool {
	w := n.window()
	return nonce != "" && (hmac.Equal([]byte(nonce), []byte(n.at(w))) || hmac.Equal([]byte(nonce), []byte(n.at(w-1))))
}
