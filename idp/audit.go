package idp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/labstack/echo/v4"
)

const ctxAudit = "ajwt.audit"

// auditInfo collects, while a request is handled, what its audit event names.
type auditInfo struct {
	start                                         time.Time
	agentID, instanceID, executionID, stepID, jti string
	chainHash                                     string
}

func (s *Server) auditContext(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Set(ctxAudit, &auditInfo{start: time.Now()})
		return next(c)
	}
}

func info(c echo.Context) *auditInfo {
	if a, ok := c.Get(ctxAudit).(*auditInfo); ok {
		return a
	}
	a := &auditInfo{start: time.Now()}
	c.Set(ctxAudit, a)
	return a
}

func (s *Server) newEvent(c echo.Context, decision string, reason ajwt.Reason) ajwt.AuditEvent {
	a := info(c)
	client := ""
	if cl, ok := c.Get(ctxClient).(*Client); ok {
		client = cl.ClientID
	}
	return ajwt.AuditEvent{
		Time: rfc3339Nano(s.now()), Source: ajwt.SourceIDP, Decision: decision, Reason: reason, ClientID: client,
		AgentID: a.agentID, InstanceID: a.instanceID, ExecutionID: a.executionID, StepID: a.stepID,
		Method: c.Request().Method, Path: c.Request().URL.Path, JTI: a.jti, ChainHash: a.chainHash,
		LatencyUS: time.Since(a.start).Microseconds(),
	}
}

func rfc3339Nano(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// appendAudit links ev into the chain inside tx and returns it with seq and hash set.
func appendAudit(tx Tx, ev ajwt.AuditEvent) (ajwt.AuditEvent, error) {
	last, err := tx.Last(logAudit)
	if err != nil {
		return ev, err
	}
	ev.PrevHash = ""
	if last.Seq > 0 {
		var prev ajwt.AuditEvent
		if err := json.Unmarshal(last.Value, &prev); err != nil {
			return ev, fmt.Errorf("audit: decode head: %w", err)
		}
		ev.PrevHash = prev.Hash
	}
	ev.Seq = last.Seq + 1
	h, err := ev.ComputeHash()
	if err != nil {
		return ev, err
	}
	ev.Hash = h
	b, err := json.Marshal(ev)
	if err != nil {
		return ev, err
	}
	seq, err := tx.Append(logAudit, b)
	if err != nil {
		return ev, err
	}
	if seq != ev.Seq {
		return ev, fmt.Errorf("audit: sequence %d, expected %d", seq, ev.Seq)
	}
	return ev, nil
}

// wtx is a write transaction of one request: it audits allow decisions into the chain
// and publishes them once the transaction committed.
type wtx struct {
	Tx
	s      *Server
	c      echo.Context
	events []ajwt.AuditEvent
}

// allow records an allow decision for the current request.
func (w *wtx) allow(reason ajwt.Reason) error {
	ev, err := appendAudit(w.Tx, w.s.newEvent(w.c, ajwt.DecisionAllow, reason))
	if err != nil {
		return err
	}
	w.events = append(w.events, ev)
	return nil
}

// update runs fn in one write transaction and publishes its audit events after commit.
func (s *Server) update(c echo.Context, fn func(w *wtx) error) error {
	var w *wtx
	err := s.store.Update(c.Request().Context(), func(tx Tx) error {
		w = &wtx{Tx: tx, s: s, c: c}
		return fn(w)
	})
	if err == nil {
		s.broker.publish(w.events)
	}
	return err
}

// auditDeny records a refusal in its own transaction (the refused request's own
// transaction, if any, was rolled back).
func (s *Server) auditDeny(c echo.Context, ae *ajwt.Error) {
	ev := s.newEvent(c, ajwt.DecisionDeny, ae.Reason)
	ctx := context.WithoutCancel(c.Request().Context())
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		ev, err = appendAudit(tx, ev)
		return err
	})
	if err != nil {
		s.log.ErrorContext(ctx, "audit write failed", "err", err)
		return
	}
	s.broker.publish([]ajwt.AuditEvent{ev})
}

// broker fans audit events out to SSE subscribers; a slow subscriber loses events
// (and is told so) rather than blocking the IDP.
type broker struct {
	mu   sync.Mutex
	subs map[chan ajwt.AuditEvent]struct{}
}

func newBroker() *broker { return &broker{subs: map[chan ajwt.AuditEvent]struct{}{}} }

func (b *broker) subscribe() chan ajwt.AuditEvent {
	ch := make(chan ajwt.AuditEvent, 256)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	return ch
}

func (b *broker) unsubscribe(ch chan ajwt.AuditEvent) {
	b.mu.Lock()
	delete(b.subs, ch)
	b.mu.Unlock()
}

func (b *broker) publish(evs []ajwt.AuditEvent) {
	if len(evs) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		for _, ev := range evs {
			select {
			case ch <- ev:
			default:
			}
		}
	}
}

// parseSince reads the `since` query parameter (default 0).
func parseSince(c echo.Context) (int64, error) {
	v := c.QueryParam("since")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, ajwt.BadRequest(ajwt.ReasonInvalidRequest, "since must be a non-negative integer")
	}
	return n, nil
}

const auditPageSize = 1000

// handleAudit is GET /v1/audit?since=N.
func (s *Server) handleAudit(c echo.Context) error {
	if _, err := s.requireRole(c, RoleAdmin, RoleResource); err != nil {
		return err
	}
	since, err := parseSince(c)
	if err != nil {
		return err
	}
	evs, err := s.readAudit(c.Request().Context(), since, auditPageSize)
	if err != nil {
		return err
	}
	next := since
	if len(evs) > 0 {
		next = evs[len(evs)-1].Seq
	}
	return writeJSON(c, http.StatusOK, map[string]any{"events": evs, "next": next})
}

// ReadAudit returns audit events with seq > since (used by `ajwt audit verify`).
func ReadAudit(ctx context.Context, st Store, since int64, limit int) ([]ajwt.AuditEvent, error) {
	var out []ajwt.AuditEvent
	err := st.View(ctx, func(tx Tx) error {
		entries, err := tx.ReadLog(logAudit, since, limit)
		if err != nil {
			return err
		}
		out = make([]ajwt.AuditEvent, len(entries))
		for i, e := range entries {
			if err := json.Unmarshal(e.Value, &out[i]); err != nil {
				return fmt.Errorf("audit seq %d: %w", e.Seq, err)
			}
		}
		return nil
	})
	return out, err
}

func (s *Server) readAudit(ctx context.Context, since int64, limit int) ([]ajwt.AuditEvent, error) {
	return ReadAudit(ctx, s.store, since, limit)
}

// VerifyAuditChain walks the whole audit log of st and checks the hash chain. It
// returns the number of events checked.
func VerifyAuditChain(ctx context.Context, st Store) (int64, error) {
	var seq int64
	prev := ""
	for {
		evs, err := ReadAudit(ctx, st, seq, auditPageSize)
		if err != nil {
			return seq, err
		}
		if len(evs) == 0 {
			return seq, nil
		}
		if i, err := ajwt.VerifyChain(evs, seq, prev); err != nil {
			return evs[i].Seq - 1, err
		}
		seq, prev = evs[len(evs)-1].Seq, evs[len(evs)-1].Hash
	}
}

// handleAuditHead is GET /v1/audit/head: a JWS over {seq, hash} of the chain head.
func (s *Server) handleAuditHead(c echo.Context) error {
	if _, err := s.requireRole(c, RoleAdmin, RoleResource, RoleApprover); err != nil {
		return err
	}
	var head ajwt.AuditEvent
	err := s.store.View(c.Request().Context(), func(tx Tx) error {
		last, err := tx.Last(logAudit)
		if err != nil || last.Seq == 0 {
			return err
		}
		return json.Unmarshal(last.Value, &head)
	})
	if err != nil {
		return err
	}
	claims := map[string]any{"iss": s.cfg.Issuer, "seq": head.Seq, "hash": head.Hash, "iat": s.now().Unix()}
	jws, err := s.keys.sign("ajwt-audit-head+jwt", claims)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, map[string]any{"seq": head.Seq, "hash": head.Hash, "jws": jws})
}

// handleAuditStream is GET /v1/audit/stream: Server-Sent Events of new audit events,
// starting after `since` when given.
func (s *Server) handleAuditStream(c echo.Context) error {
	if _, err := s.requireRole(c, RoleAdmin, RoleResource); err != nil {
		return err
	}
	since, err := parseSince(c)
	if err != nil {
		return err
	}
	ch := s.broker.subscribe()
	defer s.broker.unsubscribe(ch)
	backlog, err := s.readAudit(c.Request().Context(), since, auditPageSize)
	if err != nil {
		return err
	}
	w := c.Response()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	last := since
	send := func(ev ajwt.AuditEvent) error {
		if ev.Seq <= last {
			return nil
		}
		last = ev.Seq
		b, _ := json.Marshal(ev)
		if _, err := fmt.Fprintf(w, "id: %d\nevent: audit\ndata: %s\n\n", ev.Seq, b); err != nil {
			return err
		}
		w.Flush()
		return nil
	}
	for _, ev := range backlog {
		if err := send(ev); err != nil {
			return nil
		}
	}
	w.Flush()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-c.Request().Context().Done():
			return nil
		case ev := <-ch:
			if send(ev) != nil {
				return nil
			}
		case <-ping.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return nil
			}
			w.Flush()
		}
	}
}
