package idp_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/agentic-jwt/patchcrew/idp"
)

// flakyStore fails the Nth write of an Update once armed, as a crash mid-request would.
type flakyStore struct {
	idp.Store
	armed atomic.Int32 // fail at this write number (1-based); 0 = off
}

type flakyTx struct {
	idp.Tx
	s *flakyStore
	n int32
}

func (f *flakyStore) Update(ctx context.Context, fn func(idp.Tx) error) error {
	return f.Store.Update(ctx, func(tx idp.Tx) error { return fn(&flakyTx{Tx: tx, s: f}) })
}

func (t *flakyTx) Put(table, key string, v []byte) error {
	t.n++
	if at := t.s.armed.Load(); at > 0 && t.n == at {
		t.s.armed.Store(0)
		return errors.New("injected crash")
	}
	return t.Tx.Put(table, key, v)
}

// TestRegistrationIsAtomic: a failure between the writes of a registration leaves no
// half-registered agent; the same registration then succeeds as version 1.
func TestRegistrationIsAtomic(t *testing.T) {
	fs := &flakyStore{Store: idp.NewMemoryStore()}
	w := newWorld(t, fs)
	for at := int32(1); at <= 2; at++ {
		fs.armed.Store(at)
		st, r := w.json("POST", "/v1/agents", "admin", agentDef("fresh", "repo:read"), nil)
		if st != 500 || r.code() != "server_error" {
			t.Fatalf("write %d: %d %v", at, st, r)
		}
		if st, _, _ := w.do("GET", "/v1/agents/fresh", "admin", "", nil, nil); st != 404 {
			t.Fatalf("half-registered agent visible after failure at write %d", at)
		}
	}
	r := w.mustJSON(201, "POST", "/v1/agents", "admin", agentDef("fresh", "repo:read"))
	if r["version"] != float64(1) {
		t.Fatalf("after failures: %v", r)
	}
	if n, err := idp.VerifyAuditChain(context.Background(), fs); err != nil || n == 0 {
		t.Fatalf("audit chain: %d %v", n, err)
	}
}
