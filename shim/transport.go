package shim

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/agentic-jwt/patchcrew/ajwt"
)

// Transport returns a RoundTripper that sends every request with the agent's intent token
// for step of ex (`Authorization: DPoP <token>`) and a fresh DPoP proof signed by the
// instance key (RFC 9449 §7.1). base nil means the client's HTTP transport (or
// http.DefaultTransport). A mint refused by the IDP is returned as the request's error,
// carrying the *ajwt.Error (use ajwt.ReasonOf).
func (a *Agent) Transport(ex *Execution, step string, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = a.c.hc.Transport
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{a: a, ex: ex, step: step, base: base}
}

// HTTPClient returns an http.Client whose requests carry the agent's token and proofs
// for step of ex. It follows redirects only within the same host (so a token and its
// proofs never go to another origin).
func (a *Agent) HTTPClient(ex *Execution, step string) *http.Client {
	return &http.Client{Transport: a.Transport(ex, step, nil), Timeout: a.c.hc.Timeout, CheckRedirect: sameHostRedirects}
}

func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if len(via) > 0 && (req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme) {
		return http.ErrUseLastResponse
	}
	return nil
}

var _ http.RoundTripper = (*transport)(nil)

type transport struct {
	a    *Agent
	ex   *Execution
	step string
	base http.RoundTripper

	mu    sync.Mutex
	nonce map[string]string // origin → the last DPoP-Nonce it sent (RFC 9449 §8.2)
}

// resourceFromPath derives the resource of a request from the proxy's path layout
// (`/{resource}/...`, DESIGN §5.1), used only for a step the workflow does not have, so
// the mint still reaches the IDP and is refused (step_unknown) and audited there.
func resourceFromPath(u *url.URL) string {
	seg, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if seg == "" {
		return ""
	}
	return "urn:ajwt:resource:" + seg
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resource := ""
	if st, ok := t.ex.Step(t.step); ok {
		resource = st.Resource
	} else if resource = resourceFromPath(req.URL); resource == "" {
		closeBody(req)
		return nil, fmt.Errorf("shim: %w", ajwt.NewError(http.StatusBadRequest, ajwt.CodeInvalidGrant, ajwt.ReasonStepUnknown,
			"the workflow has no step %q", t.step))
	}
	tok, err := t.a.token(req.Context(), t.ex, t.step, resource)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	origin := req.URL.Scheme + "://" + req.URL.Host
	t.mu.Lock()
	nonce := t.nonce[origin]
	t.mu.Unlock()

	res, err := t.send(req, req.Body, tok, nonce)
	if err != nil {
		return nil, err
	}
	n := res.Header.Get("DPoP-Nonce")
	if n != "" {
		t.mu.Lock()
		if t.nonce == nil {
			t.nonce = map[string]string{}
		}
		t.nonce[origin] = n
		t.mu.Unlock()
	}
	switch {
	case res.StatusCode == http.StatusUnauthorized && n != "" && n != nonce && challengeError(res) == ajwt.CodeUseDPoPNonce:
		// RFC 9449 §9: retry once with the server's nonce, if the body can be replayed.
		body := io.ReadCloser(http.NoBody)
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return res, nil
			}
			if body, err = req.GetBody(); err != nil {
				return res, nil
			}
		}
		drain(res)
		return t.send(req, body, tok, n)
	case res.StatusCode == http.StatusUnauthorized && challengeError(res) == ajwt.CodeInvalidToken:
		// The resource no longer accepts this token (expired, revoked): mint anew next time.
		t.a.dropToken(tokenKey{execution: t.ex.ID(), step: t.step, resource: resource}, tok)
	}
	return res, nil
}

// send clones req with body, the token and a fresh proof, and sends it.
func (t *transport) send(req *http.Request, body io.ReadCloser, tok, nonce string) (*http.Response, error) {
	htu := *req.URL
	htu.RawQuery, htu.ForceQuery, htu.Fragment, htu.RawFragment, htu.User = "", false, "", "", nil
	proof, err := ajwt.NewDPoPProof(t.a.key, req.Method, htu.String(), tok, nonce, t.a.c.now())
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, fmt.Errorf("shim: dpop proof: %w", err)
	}
	r := req.Clone(req.Context())
	r.Body = body
	r.Header.Set("Authorization", "DPoP "+tok)
	r.Header.Set("DPoP", proof)
	return t.base.RoundTrip(r)
}

// challengeError returns the `error` parameter of a DPoP WWW-Authenticate challenge.
func challengeError(res *http.Response) string {
	for _, v := range res.Header.Values("WWW-Authenticate") {
		i := strings.Index(v, `error="`)
		if i < 0 {
			continue
		}
		rest := v[i+len(`error="`):]
		if j := strings.IndexByte(rest, '"'); j >= 0 {
			return rest[:j]
		}
	}
	return ""
}

func drain(res *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
}

// closeBody closes a request body the transport will not send (http.RoundTripper
// contract).
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
