package resourceproxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/agentic-jwt/patchcrew/ajwt"
	"github.com/labstack/echo/v4"
)

// auditLog is the proxy's own audit hash chain (DESIGN §5.7), kept in memory: seq from
// 1, the first prev_hash "", each hash over the previous one. Only the newest max
// events are kept; seq and the chain continue across the dropped ones.
type auditLog struct {
	now func() time.Time
	max int

	mu     sync.Mutex
	events []ajwt.AuditEvent
	seq    int64
	last   string
	subs   map[chan ajwt.AuditEvent]struct{}
}

func newAuditLog(now func() time.Time, max int) *auditLog {
	return &auditLog{now: now, max: max, subs: map[chan ajwt.AuditEvent]struct{}{}}
}

// append seals e into the chain and notifies stream subscribers (without blocking: a
// subscriber that cannot keep up misses events and can re-read them by seq).
func (a *auditLog) append(e ajwt.AuditEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq++
	e.Seq = a.seq
	e.Time = a.now().UTC().Format(time.RFC3339Nano)
	e.PrevHash = a.last
	h, err := e.ComputeHash()
	if err != nil {
		h = "" // unreachable: the event is plain strings and numbers
	}
	e.Hash = h
	a.last = h
	if len(a.events) >= a.max {
		n := copy(a.events, a.events[len(a.events)/2:])
		clear(a.events[n:])
		a.events = a.events[:n]
	}
	a.events = append(a.events, e)
	for ch := range a.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

// since returns up to limit events with seq > since, oldest first.
func (a *auditLog) since(since int64, limit int) []ajwt.AuditEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := []ajwt.AuditEvent{}
	for i := range a.events {
		if a.events[i].Seq > since {
			out = append(out, a.events[i])
			if len(out) == limit {
				break
			}
		}
	}
	return out
}

func (a *auditLog) subscribe() chan ajwt.AuditEvent {
	ch := make(chan ajwt.AuditEvent, 256)
	a.mu.Lock()
	a.subs[ch] = struct{}{}
	a.mu.Unlock()
	return ch
}

func (a *auditLog) unsubscribe(ch chan ajwt.AuditEvent) {
	a.mu.Lock()
	delete(a.subs, ch)
	a.mu.Unlock()
}

func parseSince(c echo.Context) (int64, error) {
	s := c.QueryParam("since")
	if s == "" {
		s = c.Request().Header.Get("Last-Event-ID")
	}
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, ajwt.BadRequest(ajwt.ReasonInvalidRequest, "since must be a non-negative integer")
	}
	return n, nil
}

// handleAudit is GET /v1/audit?since=N → {"events": [...], "next": <last seq>}.
func (p *Proxy) handleAudit(c echo.Context) error {
	if aerr := p.adminToken(c.Request().Context(), c.Request()); aerr != nil {
		return aerr
	}
	since, err := parseSince(c)
	if err != nil {
		return err
	}
	evs := p.audit.since(since, 1000)
	next := since
	if len(evs) > 0 {
		next = evs[len(evs)-1].Seq
	}
	return c.JSON(http.StatusOK, map[string]any{"events": evs, "next": next})
}

// handleAuditStream is GET /v1/audit/stream (Server-Sent Events): the events after
// since (or Last-Event-ID), then each new one as it is appended.
func (p *Proxy) handleAuditStream(c echo.Context) error {
	if aerr := p.adminToken(c.Request().Context(), c.Request()); aerr != nil {
		return aerr
	}
	since, err := parseSince(c)
	if err != nil {
		return err
	}
	w := c.Response()
	ch := p.audit.subscribe()
	defer p.audit.unsubscribe(ch)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	send := func(e ajwt.AuditEvent) error {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "id: %d\nevent: audit\ndata: %s\n\n", e.Seq, b); err != nil {
			return err
		}
		since = e.Seq
		return nil
	}
	for {
		backlog := p.audit.since(since, 1000)
		for _, e := range backlog {
			if err := send(e); err != nil {
				return nil
			}
		}
		w.Flush()
		if len(backlog) < 1000 {
			break
		}
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	ctx := c.Request().Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-ch:
			if e.Seq <= since {
				continue
			}
			if e.Seq > since+1 { // missed some: re-read them in order
				for _, m := range p.audit.since(since, 1000) {
					if m.Seq > e.Seq {
						break
					}
					if err := send(m); err != nil {
						return nil
					}
				}
			} else if err := send(e); err != nil {
				return nil
			}
			w.Flush()
		case <-keepalive.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return nil
			}
			w.Flush()
		}
	}
}
