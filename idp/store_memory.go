package idp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Errors shared by the Store implementations.
var (
	errStoreReadOnly = errors.New("idp: store: write in a read-only transaction")
	errStoreTxDone   = errors.New("idp: store: transaction used after it ended")
	errStoreClosed   = errors.New("idp: store: closed")
)

// MemoryStore is an in-memory Store for tests and single-process development. View takes
// a read lock; Update takes the write lock and buffers its writes in an overlay that is
// merged into the store only if fn returns nil. Values are copied in and out, so callers
// may reuse their buffers. fn must not call View or Update on the same store (the lock is
// not reentrant), and a Tx must not be used from several goroutines or after fn returns.
type MemoryStore struct {
	mu     sync.RWMutex
	closed bool
	tables map[string]map[string][]byte // table -> key -> value
	logs   map[string][][]byte          // log -> values; entry i has Seq i+1
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		tables: make(map[string]map[string][]byte),
		logs:   make(map[string][][]byte),
	}
}

// View implements Store.
func (s *MemoryStore) View(ctx context.Context, fn func(Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("idp: memory store view: %w", errStoreClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("idp: memory store view: %w", err)
	}
	t := &memTx{s: s}
	defer func() { t.done = true }()
	return fn(t)
}

// Update implements Store.
func (s *MemoryStore) Update(ctx context.Context, fn func(Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("idp: memory store update: %w", errStoreClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("idp: memory store update: %w", err)
	}
	t := &memTx{s: s, writable: true}
	// Marking the Tx done also covers a panic in fn: the overlay is simply dropped.
	defer func() { t.done = true }()
	if err := fn(t); err != nil {
		return err
	}
	// Like the SQLite store, a context that ended before the commit writes nothing.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("idp: memory store update: commit: %w", err)
	}
	t.commit()
	return nil
}

// Close implements Store. Later View and Update calls fail.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.tables = nil
	s.logs = nil
	return nil
}

// memVal is one overlay entry: a buffered Put, or a Delete when deleted is set.
type memVal struct {
	v       []byte
	deleted bool
}

// memTx is a MemoryStore transaction. A read-only memTx reads the store directly; a
// writable one buffers writes in kv and logs and reads them before the store.
type memTx struct {
	s        *MemoryStore
	writable bool
	done     bool
	kv       map[string]map[string]memVal // table -> key -> buffered write
	logs     map[string][][]byte          // log -> buffered appends
}

func (t *memTx) check(op string, write bool) error {
	if t.done {
		return fmt.Errorf("idp: memory store %s: %w", op, errStoreTxDone)
	}
	if write && !t.writable {
		return fmt.Errorf("idp: memory store %s: %w", op, errStoreReadOnly)
	}
	return nil
}

func (t *memTx) Get(table, key string) ([]byte, error) {
	if err := t.check("get", false); err != nil {
		return nil, err
	}
	if ov, ok := t.kv[table][key]; ok {
		if ov.deleted {
			return nil, ErrNotFound
		}
		return bytes.Clone(ov.v), nil
	}
	v, ok := t.s.tables[table][key]
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (t *memTx) set(table, key string, val memVal) {
	if t.kv == nil {
		t.kv = make(map[string]map[string]memVal)
	}
	m := t.kv[table]
	if m == nil {
		m = make(map[string]memVal)
		t.kv[table] = m
	}
	m[key] = val
}

func (t *memTx) Put(table, key string, value []byte) error {
	if err := t.check("put", true); err != nil {
		return err
	}
	t.set(table, key, memVal{v: bytes.Clone(value)})
	return nil
}

func (t *memTx) Delete(table, key string) error {
	if err := t.check("delete", true); err != nil {
		return err
	}
	t.set(table, key, memVal{deleted: true})
	return nil
}

func (t *memTx) List(table, prefix string) ([][]byte, error) {
	if err := t.check("list", false); err != nil {
		return nil, err
	}
	base, ov := t.s.tables[table], t.kv[table]
	keys := make([]string, 0, len(ov))
	for k := range base {
		if _, shadowed := ov[k]; !shadowed && strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	for k, v := range ov {
		if !v.deleted && strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([][]byte, len(keys))
	for i, k := range keys {
		if v, ok := ov[k]; ok {
			out[i] = bytes.Clone(v.v)
		} else {
			out[i] = bytes.Clone(base[k])
		}
	}
	return out, nil
}

// logLen returns the number of committed and buffered entries of the log.
func (t *memTx) logLen(log string) (committed, pending int) {
	return len(t.s.logs[log]), len(t.logs[log])
}

// logAt returns the value with sequence number seq (1-based), which must exist.
func (t *memTx) logAt(log string, seq int64) []byte {
	base := t.s.logs[log]
	if i := int(seq - 1); i < len(base) {
		return base[i]
	}
	return t.logs[log][int(seq-1)-len(base)]
}

func (t *memTx) Append(log string, value []byte) (int64, error) {
	if err := t.check("append", true); err != nil {
		return 0, err
	}
	if t.logs == nil {
		t.logs = make(map[string][][]byte)
	}
	t.logs[log] = append(t.logs[log], bytes.Clone(value))
	c, p := t.logLen(log)
	return int64(c + p), nil
}

func (t *memTx) Last(log string) (LogEntry, error) {
	if err := t.check("last", false); err != nil {
		return LogEntry{}, err
	}
	c, p := t.logLen(log)
	n := int64(c + p)
	if n == 0 {
		return LogEntry{}, nil
	}
	return LogEntry{Seq: n, Value: bytes.Clone(t.logAt(log, n))}, nil
}

// ReadLog implements Tx. A limit <= 0 means no limit.
func (t *memTx) ReadLog(log string, since int64, limit int) ([]LogEntry, error) {
	if err := t.check("read log", false); err != nil {
		return nil, err
	}
	c, p := t.logLen(log)
	n := int64(c + p)
	if since < 0 {
		since = 0
	}
	if since >= n {
		return nil, nil
	}
	count := n - since
	if limit > 0 && int64(limit) < count {
		count = int64(limit)
	}
	out := make([]LogEntry, 0, count)
	for seq := since + 1; seq <= since+count; seq++ {
		out = append(out, LogEntry{Seq: seq, Value: bytes.Clone(t.logAt(log, seq))})
	}
	return out, nil
}

// commit merges the overlay into the store; the caller holds the write lock.
func (t *memTx) commit() {
	s := t.s
	for table, m := range t.kv {
		base := s.tables[table]
		for k, v := range m {
			if v.deleted {
				delete(base, k) // no-op on a nil map
				continue
			}
			if base == nil {
				base = make(map[string][]byte)
				s.tables[table] = base
			}
			base[k] = v.v
		}
		if base != nil && len(base) == 0 {
			delete(s.tables, table)
		}
	}
	for log, vals := range t.logs {
		s.logs[log] = append(s.logs[log], vals...)
	}
}
