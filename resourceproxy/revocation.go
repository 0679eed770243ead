package resourceproxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
)

// Revocation kinds of the IDP's feed (DESIGN §5.3).
const (
	kindToken     = "token"
	kindAgent     = "agent"
	kindInstance  = "instance"
	kindExecution = "execution"
	kindStep      = "step"
)

// revocationView is the proxy's copy of the IDP's revocation feed, kept by polling
// GET /v1/revocations?since=N. It answers only while fresh: a successful poll within
// MaxFeedAge.
type revocationView struct {
	client       *http.Client
	url          string
	user, secret string
	now          func() time.Time

	pollMu sync.Mutex // one poll at a time

	mu       sync.RWMutex
	since    int64
	entries  map[string]time.Time // kind:id → until (zero: forever)
	lastSync time.Time
}

func newRevocationView(client *http.Client, url, user, secret string, now func() time.Time) *revocationView {
	return &revocationView{client: client, url: url, user: user, secret: secret, now: now, entries: map[string]time.Time{}}
}

// formEncode is the RFC 6749 §2.3.1 encoding of client_secret_basic credentials.
func formEncode(s string) string { return url.QueryEscape(s) }

type feedPage struct {
	Seq         int64 `json:"seq"`
	Revocations []struct {
		Seq   int64  `json:"seq"`
		Kind  string `json:"kind"`
		ID    string `json:"id"`
		Until string `json:"until"`
	} `json:"revocations"`
}

// poll reads every new feed entry and marks the view fresh.
func (v *revocationView) poll(ctx context.Context) error {
	v.pollMu.Lock()
	defer v.pollMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	v.mu.RLock()
	since := v.since
	v.mu.RUnlock()
	started := v.now()
	fresh := map[string]time.Time{}
	reset := false
	for range 100 { // pages of at most 10 000 entries
		body, err := getJSON(ctx, v.client, v.url+"?since="+strconv.FormatInt(since, 10), v.user, v.secret)
		if err != nil {
			return fmt.Errorf("revocation feed: %w", err)
		}
		var page feedPage
		if err := json.Unmarshal(body, &page); err != nil {
			return fmt.Errorf("revocation feed: %w", err)
		}
		if page.Seq < since {
			// The IDP's feed went back (a new database): start over from 0.
			since, reset, fresh = 0, true, map[string]time.Time{}
			continue
		}
		last := since
		for _, r := range page.Revocations {
			var until time.Time
			if r.Until != "" {
				if t, err := time.Parse(time.RFC3339, r.Until); err == nil {
					until = t
				}
			}
			fresh[r.Kind+":"+r.ID] = until
			last = max(last, r.Seq)
		}
		since = max(since, page.Seq, last)
		if len(page.Revocations) < 10_000 {
			break // the IDP caps a page at 10 000 entries
		}
	}
	now := v.now()
	v.mu.Lock()
	defer v.mu.Unlock()
	if reset {
		v.entries = map[string]time.Time{}
	}
	for k, u := range fresh {
		v.entries[k] = u
	}
	// Forget entries no token they cover can outlive (with a margin for clock skew).
	for k, u := range v.entries {
		if !u.IsZero() && now.After(u.Add(time.Minute)) {
			delete(v.entries, k)
		}
	}
	v.since = since
	v.lastSync = started
	return nil
}

// fresh reports whether a poll succeeded within MaxFeedAge.
func (v *revocationView) fresh() bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.freshLocked(v.now())
}

func (v *revocationView) freshLocked(now time.Time) bool {
	return !v.lastSync.IsZero() && now.Sub(v.lastSync) <= MaxFeedAge
}

func staleErr() *ajwt.Error {
	e := ajwt.NewError(http.StatusServiceUnavailable, ajwt.CodeTemporarilyUnavail, ajwt.ReasonRevocationStale, "the revocation view is not fresh; retry shortly")
	e.RetryAfter = 1
	return e
}

// check is step 3 of DESIGN §5.6 for an intent token.
func (v *revocationView) check(c *ajwt.IntentClaims) *ajwt.Error {
	now := v.now()
	v.mu.RLock()
	defer v.mu.RUnlock()
	if !v.freshLocked(now) {
		return staleErr()
	}
	has := func(kind, id string) bool {
		if id == "" {
			return false
		}
		_, ok := v.entries[kind+":"+id]
		return ok
	}
	revoked := has(kindToken, c.JTI)
	if c.AgentProof != nil {
		revoked = revoked || has(kindInstance, c.AgentProof.InstanceID)
	}
	if id, ok := strings.CutPrefix(c.Subject, "agent:"); ok {
		revoked = revoked || has(kindAgent, id)
	}
	if in := c.Intent; in != nil {
		revoked = revoked || has(kindExecution, in.ExecutionID)
		if in.ExecutionID != "" && in.StepID != "" {
			revoked = revoked || has(kindStep, in.ExecutionID+"/"+in.StepID)
		}
		for _, m := range in.DelegationChain {
			if id, ok := strings.CutPrefix(m, "agent:"); ok {
				revoked = revoked || has(kindAgent, id)
			}
		}
	}
	if revoked {
		return tokenErr(ajwt.ReasonRevoked, "the token, its agent, instance, execution, step or a delegator was revoked")
	}
	return nil
}
