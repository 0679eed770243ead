package idp_test

import (
	"sync"
	"testing"

	"github.com/agentic-jwt/patchcrew/idp"
)

// TestMintRace: many instances race to mint the same pending step; exactly one becomes
// its owner and every other gets step_not_owned.
func TestMintRace(t *testing.T) {
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, store)
			execID, root := w.execution()
			const n = 16
			hs := make([]*handle, n)
			for i := range hs {
				hs[i] = w.enroll("supervisor", w.sums["supervisor"])
			}
			var wg sync.WaitGroup
			status := make([]int, n)
			reasons := make([]string, n)
			for i := range hs {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					st, r := w.mint(hs[i], execID, "list_files", resGitHub, root, nil)
					status[i], reasons[i] = st, r.reason()
				}(i)
			}
			wg.Wait()
			winner := -1
			for i := range hs {
				switch {
				case status[i] == 200 && winner == -1:
					winner = i
				case status[i] == 200:
					t.Fatalf("two owners: %d and %d", winner, i)
				case status[i] != 400 || reasons[i] != "step_not_owned":
					t.Fatalf("instance %d: %d %s", i, status[i], reasons[i])
				}
			}
			if winner == -1 {
				t.Fatal("no instance became the owner")
			}
			_, ex, _ := w.do("GET", "/v1/executions/"+execID, "patchbot", "", nil, nil)
			owner := ex["steps"].([]any)[0].(map[string]any)["owner_instance"]
			if owner != hs[winner].instanceID {
				t.Fatalf("owner %v, winner %s", owner, hs[winner].instanceID)
			}
		})
	}
}

// TestCloseRacesMint: a close racing mints. Every mint either landed before the close
// (and its token is then inactive) or was refused with execution_closed.
func TestCloseRacesMint(t *testing.T) {
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, store)
			sup := w.enroll("supervisor", w.sums["supervisor"])
			for round := 0; round < 5; round++ {
				execID, root := w.execution()
				const n = 12
				var wg sync.WaitGroup
				toks := make([]string, n)
				reasons := make([]string, n)
				for i := 0; i < n; i++ {
					wg.Add(1)
					go func(i int) {
						defer wg.Done()
						st, r := w.mint(sup, execID, "list_files", resGitHub, root, nil)
						if st == 200 {
							toks[i] = r["access_token"].(string)
						} else {
							reasons[i] = r.reason()
						}
					}(i)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					w.mustJSON(200, "POST", "/v1/executions/"+execID+"/close", "patchbot", map[string]any{})
				}()
				wg.Wait()
				for i := 0; i < n; i++ {
					if toks[i] == "" {
						if reasons[i] != "execution_closed" {
							t.Fatalf("mint %d refused with %q", i, reasons[i])
						}
						continue
					}
					if _, r := w.form("proxy", "/oauth2/introspect", map[string][]string{"token": {toks[i]}}, nil); r["active"] != false {
						t.Fatalf("token minted before close is still active")
					}
				}
			}
		})
	}
}

func stores(t *testing.T) map[string]idp.Store {
	sq, err := idp.OpenSQLite(t.Context(), t.TempDir()+"/idp.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	return map[string]idp.Store{"memory": idp.NewMemoryStore(), "sqlite": sq}
}
