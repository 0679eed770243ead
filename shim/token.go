package shim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
)

// refreshBefore is how long before its expiry a cached token is no longer handed out.
const refreshBefore = 10 * time.Second

// tokenKey names a cached token: one per execution, step and resource (per agent, since
// every Agent has its own cache).
type tokenKey struct{ execution, step, resource string }

// cachedToken is a minted intent token and when the shim stops using it.
type cachedToken struct {
	token    string
	useUntil time.Time
}

// flight is one mint in progress that concurrent callers share.
type flight struct {
	done chan struct{}
	tok  *cachedToken
	err  error
}

// tokenResponse is the token endpoint's answer.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// token returns a usable intent token for the step, from the cache or from one mint
// shared by every concurrent caller (a small singleflight). A failed mint is not cached:
// the next call asks the IDP again, so every refusal is audited there.
func (a *Agent) token(ctx context.Context, ex *Execution, step, resource string) (string, error) {
	k := tokenKey{execution: ex.ID(), step: step, resource: resource}
	for {
		a.mu.Lock()
		if t, ok := a.tokens[k]; ok && a.c.now().Before(t.useUntil) {
			a.mu.Unlock()
			return t.token, nil
		}
		if f, ok := a.flights[k]; ok {
			a.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return "", ctx.Err()
			}
			// The leader's context ended, not ours: mint again ourselves.
			if f.err != nil && (errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) && ctx.Err() == nil {
				continue
			}
			if f.err != nil {
				return "", f.err
			}
			return f.tok.token, nil
		}
		f := &flight{done: make(chan struct{})}
		a.flights[k] = f
		a.mu.Unlock()

		f.tok, f.err = a.mint(ctx, ex, step, resource)
		a.mu.Lock()
		delete(a.flights, k)
		if f.err == nil && !a.revoked {
			a.tokens[k] = f.tok
		}
		a.mu.Unlock()
		close(f.done)
		if f.err != nil {
			return "", f.err
		}
		return f.tok.token, nil
	}
}

// mint asks the IDP for a step token with the agent_checksum grant (DESIGN §5.3): the
// DPoP proof of the instance key, the checksum recomputed from the live definition, and
// the delegation chain the agent holds in the execution.
func (a *Agent) mint(ctx context.Context, ex *Execution, step, resource string) (*cachedToken, error) {
	sum, err := a.checksum()
	if err != nil {
		return nil, fmt.Errorf("shim: mint %s/%s for %s: %w", ex.ID(), step, a.id, err)
	}
	form := url.Values{
		"grant_type":     {"agent_checksum"},
		"agent_id":       {a.id},
		"agent_checksum": {sum},
		"execution_id":   {ex.ID()},
		"step_id":        {step},
		"resource":       {resource},
	}
	// An empty chain is sent as absent: the IDP answers delegation_missing.
	if chain := a.chain(ex.ID()); len(chain) > 0 {
		form.Set("delegation_chain", strings.Join(chain, ","))
	}
	start := a.c.now()
	var tr tokenResponse
	if err := a.c.call(ctx, idpRequest{method: http.MethodPost, path: "/oauth2/token", body: []byte(form.Encode()), form: true,
		proof: a.proof(http.MethodPost)}, &tr); err != nil {
		a.c.log.WarnContext(ctx, "mint refused", "agent_id", a.id, "execution_id", ex.ID(), "step_id", step, "reason", string(ajwt.ReasonOf(err)))
		return nil, fmt.Errorf("shim: mint %s/%s for %s: %w", ex.ID(), step, a.id, err)
	}
	if tr.AccessToken == "" || !strings.EqualFold(tr.TokenType, "DPoP") {
		return nil, fmt.Errorf("shim: mint %s/%s for %s: the IDP answered no DPoP token", ex.ID(), step, a.id)
	}
	ttl := time.Duration(tr.ExpiresIn) * time.Second
	margin := refreshBefore
	if ttl < 2*refreshBefore {
		// A short lifetime (tests, probes): keep half of it rather than never caching.
		margin = ttl / 2
	}
	a.c.log.DebugContext(ctx, "token minted", "agent_id", a.id, "execution_id", ex.ID(), "step_id", step, "expires_in", tr.ExpiresIn)
	return &cachedToken{token: tr.AccessToken, useUntil: start.Add(ttl - margin)}, nil
}

// dropTokens removes the cached tokens of a step (every resource), or of a single key.
func (a *Agent) dropTokens(executionID, step string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k := range a.tokens {
		if k.execution == executionID && k.step == step {
			delete(a.tokens, k)
		}
	}
}

// dropToken removes one cached token if it is still tok.
func (a *Agent) dropToken(k tokenKey, tok string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t, ok := a.tokens[k]; ok && t.token == tok {
		delete(a.tokens, k)
	}
}
