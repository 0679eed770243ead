package resourceproxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/labstack/echo/v4"
)

// dpopAlgsParam is the `algs` parameter of every DPoP challenge (RFC 9449 §7.1).
var dpopAlgsParam = `algs="` + strings.Join(ajwt.DPoPAlgs(), " ") + `"`

// decision is what the pipeline learnt about one request, for the audit.
type decision struct {
	start       time.Time
	method      string
	path        string
	clientID    string
	agentID     string
	instanceID  string
	executionID string
	stepID      string
	jti         string
	chainHash   string
	forwardAt   time.Time
	upstreamErr bool
}

func (d *decision) fromIntent(c *ajwt.IntentClaims) {
	if c == nil {
		return
	}
	d.jti, d.clientID = c.JTI, c.ClientID
	d.agentID, _ = strings.CutPrefix(c.Subject, "agent:")
	if c.AgentProof != nil {
		d.instanceID = c.AgentProof.InstanceID
	}
	if c.Intent != nil {
		d.executionID, d.stepID, d.chainHash = c.Intent.ExecutionID, c.Intent.StepID, c.Intent.ChainHash
	}
}

type ctxKey int

const decisionKey ctxKey = iota

// handleResource runs the pipeline of DESIGN §5.6, steps 0–5, in order: the first
// failure answers and is audited.
func (p *Proxy) handleResource(c echo.Context) error {
	r, w := c.Request(), c.Response()
	d := &decision{start: time.Now(), method: r.Method, path: truncPath(r.URL.EscapedPath())}
	w.Header().Set(requestIDHeader, requestID(r))
	rt, body, aerr := p.validate(r.Context(), r, d)
	if aerr != nil {
		p.deny(w, d, aerr, p.scheme())
		return nil
	}
	// 5. forward the exact checked bytes. No protocol upgrade is ever forwarded
	// (ReverseProxy would otherwise switch to a raw tunnel).
	r.Header.Del("Upgrade")
	r.Header.Del("Connection")
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.TransferEncoding = nil
	d.forwardAt = time.Now()
	rt.forward.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), decisionKey, d)))
	if d.upstreamErr {
		p.record(d, ajwt.DecisionDeny, ajwt.ReasonUpstreamError)
		return nil
	}
	p.record(d, ajwt.DecisionAllow, "")
	return nil
}

// scheme is the authentication scheme of this proxy's challenges.
func (p *Proxy) scheme() string {
	if p.cfg.Mode == ModeOAuth {
		return "Bearer"
	}
	return "DPoP"
}

// validate runs steps 0–4 and returns the route and the request body to forward.
func (p *Proxy) validate(ctx context.Context, r *http.Request, d *decision) (*route, []byte, *ajwt.Error) {
	now := p.cfg.Now()
	// 0. path hygiene on the escaped path; matching and forwarding use the same string.
	escaped := r.URL.EscapedPath()
	if !ajwt.ValidEscapedPath(escaped) {
		return nil, nil, ajwt.BadRequest(ajwt.ReasonPathInvalid, "the request path has an empty, . or .. segment, or an escaped /, \\, . or NUL")
	}
	name, rest, _ := strings.Cut(escaped[1:], "/")
	rt, ok := p.routes[name]
	if !ok {
		return nil, nil, ajwt.NotFound("no such resource")
	}
	rest = "/" + rest

	// 1. token
	var tok string
	var intent *ajwt.IntentClaims
	var scope string
	if p.cfg.Mode == ModeOAuth {
		ac, aerr := p.bearerToken(ctx, r, rt, now)
		if ac != nil {
			d.jti, d.clientID = ac.JTI, ac.ClientID
		}
		if aerr != nil {
			return nil, nil, aerr
		}
		scope = ac.Scope
	} else {
		var aerr *ajwt.Error
		tok, intent, aerr = p.intentToken(ctx, r, rt, now)
		d.fromIntent(intent)
		if aerr != nil {
			return nil, nil, aerr
		}
		scope = intent.Scope
		// 2. DPoP proof (DESIGN §5.1) bound to this token and its cnf.jkt.
		_, err := p.dpop.Verify(ctx, ajwt.DPoPCheck{
			Values: r.Header.Values("DPoP"), Method: r.Method, HTU: p.cfg.PublicURL + escaped,
			AccessToken: tok, ExpectedJKT: intent.Cnf.JKT,
		})
		if err != nil {
			return nil, nil, ajwt.AsError(err)
		}
		// 3. not revoked, while the view is fresh.
		if aerr := p.feed.check(intent); aerr != nil {
			return nil, nil, aerr
		}
	}

	// 4. scope rule, then (A-JWT) the intent's operations, over the body as read.
	if !ajwt.ScopeStringCovers(rt.resource, scope, r.Method) {
		return nil, nil, insufficient("the token's scope does not cover %s on this resource", r.Method)
	}
	cts := r.Header.Values("Content-Type")
	if len(cts) > 1 {
		return nil, nil, ajwt.BadRequest(ajwt.ReasonInvalidRequest, "more than one Content-Type header")
	}
	body, aerr := p.readBody(r)
	if aerr != nil {
		return nil, nil, aerr
	}
	if intent != nil {
		ok, err := ajwt.MatchOperations(intent.Intent.Operations, r.Method, rest, r.Header.Get("Content-Type"), body)
		if err != nil {
			return nil, nil, ajwt.AsError(err)
		}
		if !ok {
			return nil, nil, insufficient("the request is not one of the token's operations")
		}
	}
	return rt, body, nil
}

// insufficient is a step-4 refusal: 403 insufficient_scope, operation_not_permitted.
func insufficient(format string, args ...any) *ajwt.Error {
	return ajwt.NewError(http.StatusForbidden, ajwt.CodeInsufficientScope, ajwt.ReasonOperationNotPermitted, format, args...)
}

// readBody reads the request body up to the limit; more is 413.
func (p *Proxy) readBody(r *http.Request) ([]byte, *ajwt.Error) {
	tooLarge := ajwt.NewError(http.StatusRequestEntityTooLarge, ajwt.CodeInvalidRequest, ajwt.ReasonBodyTooLarge, "the request body exceeds %d bytes", p.cfg.BodyLimit)
	if r.ContentLength > p.cfg.BodyLimit {
		return nil, tooLarge
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, p.cfg.BodyLimit+1))
	if err != nil {
		return nil, ajwt.BadRequest(ajwt.ReasonInvalidRequest, "the request body could not be read")
	}
	if int64(len(b)) > p.cfg.BodyLimit {
		return nil, tooLarge
	}
	return b, nil
}

// deny renders aerr with its challenge and records the decision.
func (p *Proxy) deny(w http.ResponseWriter, d *decision, aerr *ajwt.Error, scheme string) {
	if aerr.Code == ajwt.CodeUseDPoPNonce && p.nonce != nil {
		w.Header().Set("DPoP-Nonce", p.nonce.Current()) // RFC 9449 §9
	}
	writeError(w, aerr, scheme)
	p.record(d, ajwt.DecisionDeny, aerr.Reason)
}

// writeError writes the JSON error body with its WWW-Authenticate challenge (scheme
// "DPoP" or "Bearer"; "" for none) and Retry-After.
func writeError(w http.ResponseWriter, aerr *ajwt.Error, scheme string) {
	h := w.Header()
	if scheme != "" {
		if ch := challenge(aerr, scheme); ch != "" {
			h.Set("WWW-Authenticate", ch)
		}
	}
	if aerr.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(aerr.RetryAfter))
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(aerr.Status)
	b, err := aerr.MarshalJSON()
	if err != nil {
		return
	}
	_, _ = w.Write(append(b, '\n'))
}

// challenge is the WWW-Authenticate value for a refusal (RFC 6750 §3, RFC 9449 §7.1).
func challenge(aerr *ajwt.Error, scheme string) string {
	params := ""
	if scheme == "DPoP" {
		params = dpopAlgsParam
	}
	join := func(a, b string) string {
		if a == "" {
			return scheme + " " + b
		}
		return scheme + " " + a + ", " + b
	}
	switch {
	case aerr.Reason == ajwt.ReasonTokenMissing:
		// RFC 6750 §3.1: no error code when the request had no credentials.
		if params == "" {
			return scheme
		}
		return scheme + " " + params
	case aerr.Status == http.StatusUnauthorized:
		return join(params, fmt.Sprintf("error=%q", aerr.Code))
	case aerr.Status == http.StatusForbidden && aerr.Code == ajwt.CodeInsufficientScope:
		return scheme + ` error="insufficient_scope"`
	}
	return ""
}

// truncPath bounds the path recorded in the audit.
func truncPath(p string) string {
	if len(p) > 512 {
		return p[:512]
	}
	return p
}

// record audits a decision and counts it.
func (p *Proxy) record(d *decision, decision string, reason ajwt.Reason) {
	end := d.forwardAt
	if end.IsZero() {
		end = time.Now()
	}
	lat := end.Sub(d.start)
	p.metrics.observe(decision, reason, lat)
	p.audit.append(ajwt.AuditEvent{
		Source: ajwt.SourceProxy, Decision: decision, Reason: reason, ClientID: d.clientID,
		AgentID: d.agentID, InstanceID: d.instanceID, ExecutionID: d.executionID, StepID: d.stepID,
		Method: d.method, Path: d.path, JTI: d.jti, ChainHash: d.chainHash, LatencyUS: lat.Microseconds(),
	})
	if decision == ajwt.DecisionDeny {
		p.log.Debug("proxy deny", "reason", reason, "method", d.method, "path", d.path, "jti", d.jti)
	}
}
