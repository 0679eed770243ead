package idp

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// storeImpl is one Store implementation under the contract tests.
type storeImpl struct {
	name string
	open func(t testing.TB) Store
}

var storeImpls = []storeImpl{
	{"memory", func(t testing.TB) Store { return NewMemoryStore() }},
	{"sqlite", func(t testing.TB) Store {
		s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "idp.db"))
		if err != nil {
			t.Fatalf("OpenSQLite: %v", err)
		}
		return s
	}},
}

// forEachStore runs test against a fresh store of every implementation.
func forEachStore(t *testing.T, test func(t *testing.T, s Store)) {
	t.Helper()
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) {
			s := impl.open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			test(t, s)
		})
	}
}

func storeCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func storeUpdate(t testing.TB, s Store, fn func(Tx) error) {
	t.Helper()
	if err := s.Update(storeCtx(t), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func storeView(t testing.TB, s Store, fn func(Tx) error) {
	t.Helper()
	if err := s.View(storeCtx(t), fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

func storeMustGet(t testing.TB, s Store, table, key string) []byte {
	t.Helper()
	var v []byte
	storeView(t, s, func(tx Tx) (err error) {
		v, err = tx.Get(table, key)
		return err
	})
	return v
}

func storeWantMissing(t testing.TB, s Store, table, key string) {
	t.Helper()
	storeView(t, s, func(tx Tx) error {
		if v, err := tx.Get(table, key); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q, %q) = %q, %v; want ErrNotFound", table, key, v, err)
		}
		return nil
	})
}

func storeLog(t testing.TB, s Store, log string) []LogEntry {
	t.Helper()
	var es []LogEntry
	storeView(t, s, func(tx Tx) (err error) {
		es, err = tx.ReadLog(log, 0, 0)
		return err
	})
	return es
}

func storeListStrings(t testing.TB, tx Tx, table, prefix string) []string {
	t.Helper()
	vs, err := tx.List(table, prefix)
	if err != nil {
		t.Fatalf("List(%q, %q): %v", table, prefix, err)
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

func storeEqualStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStoreGetMissing(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		storeWantMissing(t, s, "clients", "nope")
		storeUpdate(t, s, func(tx Tx) error {
			if _, err := tx.Get("clients", "nope"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get in Update: err = %v, want ErrNotFound", err)
			}
			return nil
		})
	})
}

func TestStorePutGetOverwriteDelete(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		buf := []byte(`{"v":1}`)
		storeUpdate(t, s, func(tx Tx) error {
			if err := tx.Put("clients", "a", buf); err != nil {
				return err
			}
			copy(buf, `{"v":9}`) // the caller reuses its buffer: the store must have copied
			return nil
		})
		if got := storeMustGet(t, s, "clients", "a"); string(got) != `{"v":1}` {
			t.Fatalf("Get after Put = %q", got)
		}

		// The returned slice belongs to the caller.
		got := storeMustGet(t, s, "clients", "a")
		copy(got, "XXXX")
		if got := storeMustGet(t, s, "clients", "a"); string(got) != `{"v":1}` {
			t.Fatalf("Get after mutating a returned value = %q", got)
		}

		// Same key, other table: independent.
		storeWantMissing(t, s, "agents", "a")

		storeUpdate(t, s, func(tx Tx) error { return tx.Put("clients", "a", []byte(`{"v":2}`)) })
		if got := storeMustGet(t, s, "clients", "a"); string(got) != `{"v":2}` {
			t.Fatalf("Get after overwrite = %q", got)
		}

		storeUpdate(t, s, func(tx Tx) error { return tx.Delete("clients", "a") })
		storeWantMissing(t, s, "clients", "a")
		// Deleting a missing key is not an error.
		storeUpdate(t, s, func(tx Tx) error { return tx.Delete("clients", "a") })
		storeUpdate(t, s, func(tx Tx) error { return tx.Delete("never", "was") })

		// Empty values round-trip.
		storeUpdate(t, s, func(tx Tx) error {
			if err := tx.Put("t", "empty", []byte{}); err != nil {
				return err
			}
			return tx.Put("t", "nil", nil)
		})
		for _, k := range []string{"empty", "nil"} {
			if got := storeMustGet(t, s, "t", k); len(got) != 0 {
				t.Errorf("Get(%q) = %q, want empty", k, got)
			}
		}
	})
}

func TestStoreList(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		keys := []string{"b/2", "a/1", "b/10", "b/1", "c", "b", "b\xff", "b\xff\xff/x", "bb"}
		storeUpdate(t, s, func(tx Tx) error {
			for _, k := range keys {
				if err := tx.Put("t", k, []byte(k)); err != nil {
					return err
				}
			}
			return tx.Put("other", "b/1", []byte("other table"))
		})
		cases := []struct {
			prefix string
			want   []string
		}{
			{"b/", []string{"b/1", "b/10", "b/2"}},
			{"b", []string{"b", "b/1", "b/10", "b/2", "bb", "b\xff", "b\xff\xff/x"}},
			{"b\xff", []string{"b\xff", "b\xff\xff/x"}},
			{"b\xff\xff", []string{"b\xff\xff/x"}},
			{"", []string{"a/1", "b", "b/1", "b/10", "b/2", "bb", "b\xff", "b\xff\xff/x", "c"}},
			{"zz", []string{}},
			{"b/1", []string{"b/1", "b/10"}},
		}
		storeView(t, s, func(tx Tx) error {
			for _, c := range cases {
				if got := storeListStrings(t, tx, "t", c.prefix); !storeEqualStrings(got, c.want) {
					t.Errorf("List(t, %q) = %q, want %q", c.prefix, got, c.want)
				}
			}
			if got := storeListStrings(t, tx, "none", ""); len(got) != 0 {
				t.Errorf("List of an empty table = %q", got)
			}
			return nil
		})
	})
}

// TestStoreUpdateReadsOwnWrites checks that reads inside an Update see its earlier writes.
func TestStoreUpdateReadsOwnWrites(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		storeUpdate(t, s, func(tx Tx) error {
			for _, k := range []string{"k1", "k2", "k3"} {
				if err := tx.Put("t", k, []byte("old-"+k)); err != nil {
					return err
				}
			}
			_, err := tx.Append("log", []byte("e1"))
			return err
		})
		storeUpdate(t, s, func(tx Tx) error {
			if err := tx.Put("t", "k1", []byte("new-k1")); err != nil {
				return err
			}
			if err := tx.Put("t", "k0", []byte("new-k0")); err != nil {
				return err
			}
			if err := tx.Delete("t", "k2"); err != nil {
				return err
			}
			if v, err := tx.Get("t", "k1"); err != nil || string(v) != "new-k1" {
				t.Errorf("Get(k1) = %q, %v", v, err)
			}
			if _, err := tx.Get("t", "k2"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(k2) after Delete: err = %v", err)
			}
			if got, want := storeListStrings(t, tx, "t", "k"), []string{"new-k0", "new-k1", "old-k3"}; !storeEqualStrings(got, want) {
				t.Errorf("List = %q, want %q", got, want)
			}
			if seq, err := tx.Append("log", []byte("e2")); err != nil || seq != 2 {
				t.Errorf("Append = %d, %v; want 2", seq, err)
			}
			if e, err := tx.Last("log"); err != nil || e.Seq != 2 || string(e.Value) != "e2" {
				t.Errorf("Last = %+v, %v", e, err)
			}
			es, err := tx.ReadLog("log", 0, 0)
			if err != nil || len(es) != 2 || string(es[0].Value) != "e1" || string(es[1].Value) != "e2" {
				t.Errorf("ReadLog = %+v, %v", es, err)
			}
			// Put after Delete in the same transaction resurrects the key.
			if err := tx.Delete("t", "k3"); err != nil {
				return err
			}
			return tx.Put("t", "k3", []byte("again-k3"))
		})
		storeView(t, s, func(tx Tx) error {
			if got, want := storeListStrings(t, tx, "t", ""), []string{"new-k0", "new-k1", "again-k3"}; !storeEqualStrings(got, want) {
				t.Errorf("after commit List = %q, want %q", got, want)
			}
			return nil
		})
	})
}

func TestStoreFailedUpdateWritesNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		storeUpdate(t, s, func(tx Tx) error { return tx.Put("t", "keep", []byte("v")) })
		errBoom := errors.New("boom")
		err := s.Update(storeCtx(t), func(tx Tx) error {
			if err := tx.Put("t", "new", []byte("v")); err != nil {
				return err
			}
			if err := tx.Put("t", "keep", []byte("changed")); err != nil {
				return err
			}
			if err := tx.Delete("t", "keep2"); err != nil {
				return err
			}
			if _, err := tx.Append("audit", []byte("e")); err != nil {
				return err
			}
			return fmt.Errorf("wrapped: %w", errBoom)
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("Update error = %v, want errBoom", err)
		}
		storeWantMissing(t, s, "t", "new")
		if got := storeMustGet(t, s, "t", "keep"); string(got) != "v" {
			t.Errorf("keep = %q, want unchanged", got)
		}
		if es := storeLog(t, s, "audit"); len(es) != 0 {
			t.Errorf("audit log = %+v, want empty", es)
		}
		storeView(t, s, func(tx Tx) error {
			if e, err := tx.Last("audit"); err != nil || e.Seq != 0 || e.Value != nil {
				t.Errorf("Last = %+v, %v; want zero", e, err)
			}
			return nil
		})
		// The failed Append did not consume a sequence number.
		storeUpdate(t, s, func(tx Tx) error {
			if seq, err := tx.Append("audit", []byte("e")); err != nil || seq != 1 {
				t.Errorf("Append after failed Update = %d, %v; want 1", seq, err)
			}
			return nil
		})
	})
}

func TestStoreLogs(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		storeView(t, s, func(tx Tx) error {
			if e, err := tx.Last("audit"); err != nil || e.Seq != 0 || e.Value != nil {
				t.Errorf("Last on empty log = %+v, %v", e, err)
			}
			if es, err := tx.ReadLog("audit", 0, 10); err != nil || len(es) != 0 {
				t.Errorf("ReadLog on empty log = %+v, %v", es, err)
			}
			return nil
		})
		// Interleave two logs across several Updates: numbering is per log and contiguous.
		next := map[string]int64{"audit": 1, "revocations": 1}
		for round := 0; round < 4; round++ {
			storeUpdate(t, s, func(tx Tx) error {
				for i := 0; i < 3; i++ {
					for _, log := range []string{"audit", "revocations"} {
						if log == "revocations" && i == 2 {
							continue
						}
						want := next[log]
						seq, err := tx.Append(log, []byte(fmt.Sprintf("%s-%d", log, want)))
						if err != nil {
							return err
						}
						if seq != want {
							t.Errorf("Append(%s) = %d, want %d", log, seq, want)
						}
						next[log]++
					}
				}
				return nil
			})
		}
		for log, n := range next {
			es := storeLog(t, s, log)
			if int64(len(es)) != n-1 {
				t.Fatalf("%s has %d entries, want %d", log, len(es), n-1)
			}
			for i, e := range es {
				if e.Seq != int64(i+1) || string(e.Value) != fmt.Sprintf("%s-%d", log, i+1) {
					t.Errorf("%s[%d] = {%d %q}", log, i, e.Seq, e.Value)
				}
			}
		}
		storeView(t, s, func(tx Tx) error {
			e, err := tx.Last("audit")
			if err != nil || e.Seq != 12 || string(e.Value) != "audit-12" {
				t.Errorf("Last = {%d %q}, %v", e.Seq, e.Value, err)
			}
			return nil
		})
	})
}

func TestStoreReadLogSinceLimit(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		storeUpdate(t, s, func(tx Tx) error {
			for i := 1; i <= 10; i++ {
				if _, err := tx.Append("audit", []byte(fmt.Sprint(i))); err != nil {
					return err
				}
			}
			return nil
		})
		cases := []struct {
			since      int64
			limit      int
			first, cnt int64
		}{
			{0, 3, 1, 3},
			{3, 3, 4, 3},
			{8, 5, 9, 2},
			{9, 1, 10, 1},
			{10, 5, 0, 0},
			{42, 5, 0, 0},
			{0, 0, 1, 10}, // limit <= 0: no limit
			{4, -1, 5, 6}, // limit <= 0: no limit
			{-5, 2, 1, 2}, // since < 0 reads from the start
			{0, 100, 1, 10},
		}
		storeView(t, s, func(tx Tx) error {
			for _, c := range cases {
				es, err := tx.ReadLog("audit", c.since, c.limit)
				if err != nil {
					t.Fatalf("ReadLog(%d, %d): %v", c.since, c.limit, err)
				}
				if int64(len(es)) != c.cnt {
					t.Errorf("ReadLog(%d, %d) returned %d entries, want %d", c.since, c.limit, len(es), c.cnt)
					continue
				}
				for i, e := range es {
					if want := c.first + int64(i); e.Seq != want || string(e.Value) != fmt.Sprint(want) {
						t.Errorf("ReadLog(%d, %d)[%d] = {%d %q}, want seq %d", c.since, c.limit, i, e.Seq, e.Value, want)
					}
				}
			}
			return nil
		})
	})
}

func TestStoreViewIsReadOnly(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		storeUpdate(t, s, func(tx Tx) error { return tx.Put("t", "k", []byte("v")) })
		storeView(t, s, func(tx Tx) error {
			if err := tx.Put("t", "k", []byte("x")); err == nil {
				t.Error("Put in View succeeded")
			}
			if err := tx.Put("t", "new", []byte("x")); err == nil {
				t.Error("Put in View succeeded")
			}
			if err := tx.Delete("t", "k"); err == nil {
				t.Error("Delete in View succeeded")
			}
			if _, err := tx.Append("audit", []byte("x")); err == nil {
				t.Error("Append in View succeeded")
			}
			return nil
		})
		if got := storeMustGet(t, s, "t", "k"); string(got) != "v" {
			t.Errorf("k = %q after View writes", got)
		}
		storeWantMissing(t, s, "t", "new")
		if es := storeLog(t, s, "audit"); len(es) != 0 {
			t.Errorf("audit = %+v after View Append", es)
		}
	})
}

func TestStoreTxUnusableAfterEnd(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		var leaked Tx
		storeUpdate(t, s, func(tx Tx) error { leaked = tx; return nil })
		if err := leaked.Put("t", "k", []byte("v")); err == nil {
			t.Error("Put on an ended Update Tx succeeded")
		}
		storeView(t, s, func(tx Tx) error { leaked = tx; return nil })
		if _, err := leaked.Get("t", "k"); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Get on an ended View Tx: err = %v", err)
		}
		storeWantMissing(t, s, "t", "k")
	})
}

func TestStoreCanceledContext(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		ran := false
		if err := s.Update(ctx, func(tx Tx) error { ran = true; return tx.Put("t", "k", []byte("v")) }); !errors.Is(err, context.Canceled) {
			t.Errorf("Update with canceled ctx: err = %v", err)
		}
		if err := s.View(ctx, func(tx Tx) error { ran = true; return nil }); !errors.Is(err, context.Canceled) {
			t.Errorf("View with canceled ctx: err = %v", err)
		}
		if ran {
			t.Error("fn ran with a canceled context")
		}
		storeWantMissing(t, s, "t", "k")

		// Canceled during fn: nothing is committed.
		ctx, cancel = context.WithCancel(context.Background())
		err := s.Update(ctx, func(tx Tx) error {
			if err := tx.Put("t", "k", []byte("v")); err != nil {
				return err
			}
			cancel()
			return nil
		})
		if err == nil {
			t.Error("Update whose context was canceled before commit succeeded")
		}
		storeWantMissing(t, s, "t", "k")
		storeUpdate(t, s, func(tx Tx) error { return tx.Put("t", "k", []byte("v")) })
	})
}

func TestStoreConcurrentUpdates(t *testing.T) {
	const workers, perWorker = 16, 50
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := storeCtx(t)
		var wg sync.WaitGroup
		errs := make(chan error, workers*2)
		stop := make(chan struct{})
		// Readers run alongside and must never see the counter go backwards.
		var readers sync.WaitGroup
		for r := 0; r < 4; r++ {
			readers.Add(1)
			go func() {
				defer readers.Done()
				last := 0
				for {
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Microsecond): // don't starve the writers under -race
					}
					var n int
					err := s.View(ctx, func(tx Tx) error {
						v, err := tx.Get("counters", "c")
						if errors.Is(err, ErrNotFound) {
							return nil
						}
						if err != nil {
							return err
						}
						_, err = fmt.Sscan(string(v), &n)
						return err
					})
					if err != nil {
						errs <- err
						return
					}
					if n < last {
						errs <- fmt.Errorf("counter went from %d to %d", last, n)
						return
					}
					last = n
				}
			}()
		}
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < perWorker; i++ {
					err := s.Update(ctx, func(tx Tx) error {
						n := 0
						v, err := tx.Get("counters", "c")
						switch {
						case errors.Is(err, ErrNotFound):
						case err != nil:
							return err
						default:
							if _, err := fmt.Sscan(string(v), &n); err != nil {
								return err
							}
						}
						if err := tx.Put("counters", "c", []byte(fmt.Sprint(n+1))); err != nil {
							return err
						}
						_, err = tx.Append("increments", []byte(fmt.Sprint(n+1)))
						return err
					})
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(stop)
		readers.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if got := storeMustGet(t, s, "counters", "c"); string(got) != fmt.Sprint(workers*perWorker) {
			t.Errorf("counter = %s, want %d", got, workers*perWorker)
		}
		es := storeLog(t, s, "increments")
		if len(es) != workers*perWorker {
			t.Fatalf("increments log has %d entries, want %d", len(es), workers*perWorker)
		}
		for i, e := range es {
			if e.Seq != int64(i+1) || string(e.Value) != fmt.Sprint(i+1) {
				t.Fatalf("increments[%d] = {%d %q}", i, e.Seq, e.Value)
			}
		}
	})
}

func TestStorePanicRollsBack(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		storeUpdate(t, s, func(tx Tx) error { return tx.Put("t", "keep", []byte("v")) })
		func() {
			defer func() {
				if r := recover(); r != "kaboom" {
					t.Errorf("recovered %v, want kaboom", r)
				}
			}()
			s.Update(storeCtx(t), func(tx Tx) error {
				tx.Put("t", "new", []byte("v"))
				tx.Put("t", "keep", []byte("changed"))
				tx.Append("audit", []byte("e"))
				panic("kaboom")
			})
		}()
		func() {
			defer func() {
				if r := recover(); r != "view-kaboom" {
					t.Errorf("recovered %v, want view-kaboom", r)
				}
			}()
			s.View(storeCtx(t), func(tx Tx) error { panic("view-kaboom") })
		}()
		storeWantMissing(t, s, "t", "new")
		if got := storeMustGet(t, s, "t", "keep"); string(got) != "v" {
			t.Errorf("keep = %q after panicking Update", got)
		}
		if es := storeLog(t, s, "audit"); len(es) != 0 {
			t.Errorf("audit = %+v after panicking Update", es)
		}
		// Still usable: the lock / writer connection was released. Repeat more times than
		// there are reader connections so a leaked one would show.
		for i := 0; i < 20; i++ {
			storeUpdate(t, s, func(tx Tx) error { return tx.Put("t", "after", []byte(fmt.Sprint(i))) })
			if got := storeMustGet(t, s, "t", "after"); string(got) != fmt.Sprint(i) {
				t.Fatalf("after = %q", got)
			}
		}
	})
}

func TestStoreClosed(t *testing.T) {
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) {
			s := impl.open(t)
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := s.Update(context.Background(), func(Tx) error { return nil }); err == nil {
				t.Error("Update after Close succeeded")
			}
			if err := s.View(context.Background(), func(Tx) error { return nil }); err == nil {
				t.Error("View after Close succeeded")
			}
		})
	}
}

// SQLite-specific tests.

func TestStoreSQLitePersistence(t *testing.T) {
	ctx := storeCtx(t)
	path := filepath.Join(t.TempDir(), "sub dir?#%", "idp.db") // URI metacharacters in the path
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	if s.migrationsApplied != len(sqliteMigrations) {
		t.Errorf("first open applied %d migrations, want %d", s.migrationsApplied, len(sqliteMigrations))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("database file not at the given path: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode = %v, want 0600", fi.Mode().Perm())
	}
	storeUpdate(t, s, func(tx Tx) error {
		if err := tx.Put("clients", "c1", []byte(`{"id":"c1"}`)); err != nil {
			return err
		}
		for i := 0; i < 3; i++ {
			if _, err := tx.Append("audit", []byte(fmt.Sprint(i))); err != nil {
				return err
			}
		}
		return nil
	})
	for _, suffix := range []string{"-wal", "-shm"} {
		if fi, err := os.Stat(path + suffix); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", suffix, fi.Mode().Perm())
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	for reopen := 0; reopen < 2; reopen++ {
		s, err = OpenSQLite(ctx, path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if s.migrationsApplied != 0 {
			t.Errorf("reopen applied %d migrations, want 0", s.migrationsApplied)
		}
		var versions []int
		rows, err := s.reader.QueryContext(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			versions = append(versions, v)
		}
		rows.Close()
		if len(versions) != len(sqliteMigrations) || versions[0] != 1 || versions[len(versions)-1] != len(sqliteMigrations) {
			t.Errorf("schema_migrations = %v, want 1..%d once each", versions, len(sqliteMigrations))
		}
		if got := storeMustGet(t, s, "clients", "c1"); string(got) != `{"id":"c1"}` {
			t.Errorf("after reopen c1 = %q", got)
		}
		es := storeLog(t, s, "audit")
		if len(es) != 3+reopen || es[2].Seq != 3 || string(es[2].Value) != "2" {
			t.Errorf("after reopen audit = %+v", es)
		}
		storeUpdate(t, s, func(tx Tx) error {
			seq, err := tx.Append("audit", []byte("more"))
			if err == nil && seq != int64(4+reopen) {
				t.Errorf("Append after reopen = %d, want %d", seq, 4+reopen)
			}
			return err
		})
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

func TestStoreSQLiteRejectsNewerSchema(t *testing.T) {
	ctx := storeCtx(t)
	path := filepath.Join(t.TempDir(), "idp.db")
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.writer.ExecContext(ctx, `INSERT INTO schema_migrations(version) VALUES(?)`, len(sqliteMigrations)+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := OpenSQLite(ctx, path); err == nil {
		s.Close()
		t.Fatal("OpenSQLite accepted a database with a newer schema version")
	}
}

func TestStoreSQLitePragmas(t *testing.T) {
	ctx := storeCtx(t)
	s, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "idp.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mode string
	var sync, busy, queryOnly int
	if err := s.writer.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("writer journal_mode = %q, %v", mode, err)
	}
	if err := s.writer.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil || sync != 1 {
		t.Errorf("writer synchronous = %d, %v; want 1 (NORMAL)", sync, err)
	}
	if err := s.writer.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy); err != nil || busy != sqliteBusyTimeoutMS {
		t.Errorf("writer busy_timeout = %d, %v", busy, err)
	}
	if err := s.reader.QueryRowContext(ctx, `PRAGMA query_only`).Scan(&queryOnly); err != nil || queryOnly != 1 {
		t.Errorf("reader query_only = %d, %v", queryOnly, err)
	}
	// The reader pool cannot write even when bypassing the Tx wrapper.
	if _, err := s.reader.ExecContext(ctx, `INSERT INTO kv(tbl, k, v) VALUES('t', 'k', x'00')`); err == nil {
		t.Error("write through the reader pool succeeded")
	}
}

// TestStoreSQLiteUpdateBeginsImmediate checks that _txlock=immediate makes an Update take
// the write lock at BEGIN: while an Update that has not yet touched the database is open,
// another connection cannot begin a write transaction.
func TestStoreSQLiteUpdateBeginsImmediate(t *testing.T) {
	ctx := storeCtx(t)
	path := filepath.Join(t.TempDir(), "idp.db")
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := sql.Open("sqlite", sqliteDSN(path, map[string][]string{"_pragma": {"busy_timeout(0)"}}))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetMaxOpenConns(1)
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	storeUpdate(t, s, func(Tx) error {
		if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err == nil {
			conn.ExecContext(ctx, `ROLLBACK`)
			t.Error("another connection began a write transaction during an Update: BEGIN was not IMMEDIATE")
		}
		return nil
	})
	// Outside an Update the lock is free.
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatalf("BEGIN IMMEDIATE outside an Update: %v", err)
	}
	if _, err := conn.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
}

// TestStoreSQLiteViewSnapshot checks that a View sees one snapshot while Updates commit.
func TestStoreSQLiteViewSnapshot(t *testing.T) {
	ctx := storeCtx(t)
	s, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "idp.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storeUpdate(t, s, func(tx Tx) error { return tx.Put("t", "k", []byte("1")) })
	storeView(t, s, func(tx Tx) error {
		if v, err := tx.Get("t", "k"); err != nil || string(v) != "1" {
			t.Fatalf("Get = %q, %v", v, err)
		}
		// The writer is not blocked by the open read transaction.
		storeUpdate(t, s, func(tx Tx) error { return tx.Put("t", "k", []byte("2")) })
		if v, err := tx.Get("t", "k"); err != nil || string(v) != "1" {
			t.Errorf("Get in the same View after a commit = %q, %v; want the snapshot's 1", v, err)
		}
		return nil
	})
	if got := storeMustGet(t, s, "t", "k"); string(got) != "2" {
		t.Errorf("new View sees %q, want 2", got)
	}
}

// BenchmarkStore measures the token endpoint's shape: an Update with 3 Gets, 2 Puts and
// 1 Append of ~1 KiB values (a token mint), and a View with 5 Gets.
func BenchmarkStore(b *testing.B) {
	value := bytes.Repeat([]byte("x"), 1024)
	keys := []string{"client-1", "agent-1", "key-1", "grant-1", "session-1"}
	for _, impl := range storeImpls {
		b.Run(impl.name, func(b *testing.B) {
			s := impl.open(b)
			defer s.Close()
			ctx := context.Background()
			if err := s.Update(ctx, func(tx Tx) error {
				for _, k := range keys {
					if err := tx.Put("bench", k, value); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			b.Run("update", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					i++
					err := s.Update(ctx, func(tx Tx) error {
						for _, k := range keys[:3] {
							if _, err := tx.Get("bench", k); err != nil {
								return err
							}
						}
						if err := tx.Put("tokens", fmt.Sprint("jti-", i), value); err != nil {
							return err
						}
						if err := tx.Put("bench", "session-1", value); err != nil {
							return err
						}
						_, err := tx.Append("audit", value)
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
			view := func(tx Tx) error {
				for _, k := range keys {
					if _, err := tx.Get("bench", k); err != nil {
						return err
					}
				}
				return nil
			}
			b.Run("view", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := s.View(ctx, view); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("view-parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := s.View(ctx, view); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		})
	}
}
