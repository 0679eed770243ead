package idp

import (
	"context"
	"errors"
)

// ErrNotFound is returned by Tx.Get when the key does not exist.
var ErrNotFound = errors.New("not found")

// Store is the IDP's storage: a transactional key-value store of JSON records in named
// tables plus append-only numbered logs (audit events, revocations). Every write that
// must be atomic runs in one Update; a failed Update leaves nothing behind.
type Store interface {
	// View runs fn in a read-only transaction with a consistent snapshot.
	View(ctx context.Context, fn func(Tx) error) error
	// Update runs fn in a read-write transaction. Updates are serialised: an Update sees
	// every Update that committed before it began. If fn returns an error nothing is
	// written.
	Update(ctx context.Context, fn func(Tx) error) error
	// Close releases the store.
	Close() error
}

// LogEntry is one record of an append-only log.
type LogEntry struct {
	Seq   int64
	Value []byte
}

// Tx is a transaction. Writes on a read-only (View) Tx return an error.
type Tx interface {
	// Get returns the value stored under key in table, or ErrNotFound.
	Get(table, key string) ([]byte, error)
	// Put stores value under key in table, replacing any previous value.
	Put(table, key string, value []byte) error
	// Delete removes key from table; deleting a missing key is not an error.
	Delete(table, key string) error
	// List returns the values of table whose keys start with prefix, ordered by key.
	List(table, prefix string) ([][]byte, error)
	// Append adds value to the named log and returns its sequence number; the first
	// entry of a log is 1 and numbers increase by one.
	Append(log string, value []byte) (int64, error)
	// Last returns the last entry of the log, or a zero LogEntry if the log is empty.
	Last(log string) (LogEntry, error)
	// ReadLog returns up to limit entries with Seq > since, oldest first.
	ReadLog(log string, since int64, limit int) ([]LogEntry, error)
}
