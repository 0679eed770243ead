package idp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// sqliteMigrations is the ordered schema history: entry i is schema version i+1. Each is
// applied once, in its own transaction, and recorded in schema_migrations. Append new
// migrations; never edit or reorder applied ones.
var sqliteMigrations = []string{
	// 1: key-value records and append-only logs.
	`CREATE TABLE kv(
		tbl TEXT NOT NULL,
		k   TEXT NOT NULL,
		v   BLOB NOT NULL,
		PRIMARY KEY(tbl, k)
	);
	CREATE TABLE logs(
		name TEXT NOT NULL,
		seq  INTEGER NOT NULL,
		v    BLOB NOT NULL,
		PRIMARY KEY(name, seq)
	);`,
}

// sqliteBusyTimeoutMS is how long a connection waits for a lock held by another
// connection (the reader pool, or another process on the same file) before SQLITE_BUSY.
const sqliteBusyTimeoutMS = 5000

// Prepared statements, by index.
const (
	sqlGet = iota
	sqlPut
	sqlDelete
	sqlList     // prefix with an upper bound
	sqlListFrom // prefix without an upper bound (empty or all-0xFF prefix)
	sqlAppend
	sqlLast
	sqlReadLog
	sqlNumStmts
)

var sqliteStmtText = [sqlNumStmts]string{
	sqlGet:      `SELECT v FROM kv WHERE tbl = ? AND k = ?`,
	sqlPut:      `INSERT INTO kv(tbl, k, v) VALUES(?, ?, ?) ON CONFLICT(tbl, k) DO UPDATE SET v = excluded.v`,
	sqlDelete:   `DELETE FROM kv WHERE tbl = ? AND k = ?`,
	sqlList:     `SELECT v FROM kv WHERE tbl = ? AND k >= ? AND k < ? ORDER BY k`,
	sqlListFrom: `SELECT v FROM kv WHERE tbl = ? AND k >= ? ORDER BY k`,
	sqlAppend: `INSERT INTO logs(name, seq, v)
		SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2 FROM logs WHERE name = ?1
		RETURNING seq`,
	sqlLast:    `SELECT seq, v FROM logs WHERE name = ? ORDER BY seq DESC LIMIT 1`,
	sqlReadLog: `SELECT seq, v FROM logs WHERE name = ? AND seq > ? ORDER BY seq LIMIT ?`,
}

// sqliteReadStmts are the statements also prepared on the reader pool.
var sqliteReadStmts = []int{sqlGet, sqlList, sqlListFrom, sqlLast, sqlReadLog}

// SQLiteStore is a Store in one SQLite file (WAL mode). Updates go through a single
// writer connection whose transactions begin IMMEDIATE, so they are serialised and never
// fail to upgrade a read lock; Views use a pool of query-only connections and see a
// consistent snapshot without blocking the writer. fn must not call Update on the same
// store from inside an Update (the single writer connection is taken, so it would block
// until ctx ends), and a Tx must not be used from several goroutines or after fn returns.
type SQLiteStore struct {
	writer *sql.DB
	reader *sql.DB
	wstmts [sqlNumStmts]*sql.Stmt // prepared on writer
	rstmts [sqlNumStmts]*sql.Stmt // read statements prepared on reader; others nil

	// migrationsApplied is the number of migrations this open applied (for tests).
	migrationsApplied int

	closeOnce sync.Once
	closeErr  error
}

var _ Store = (*SQLiteStore)(nil)

// OpenSQLite opens (creating it with mode 0600 if needed) the SQLite database at path and
// brings its schema up to date.
func OpenSQLite(ctx context.Context, path string) (*SQLiteStore, error) {
	if path == "" {
		return nil, errors.New("idp: open sqlite: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("idp: open sqlite %s: %w", path, err)
	}
	// Create the file ourselves so it is never world-readable; SQLite gives the -wal and
	// -shm files the permissions of the database file.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("idp: open sqlite %s: create: %w", abs, err)
		}
	case !errors.Is(err, os.ErrExist):
		return nil, fmt.Errorf("idp: open sqlite %s: create: %w", abs, err)
	}

	s := &SQLiteStore{}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()

	// Writer: one connection; _txlock=immediate turns BeginTx into BEGIN IMMEDIATE.
	s.writer, err = sql.Open("sqlite", sqliteDSN(abs, url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeoutMS),
			"journal_mode(WAL)",
			"mmap_size(268435456)",
			"synchronous(NORMAL)",
		},
		"_txlock": {"immediate"},
	}))
	if err != nil {
		return nil, fmt.Errorf("idp: open sqlite %s: writer: %w", abs, err)
	}
	s.writer.SetMaxOpenConns(1)
	s.writer.SetMaxIdleConns(1)
	s.writer.SetConnMaxLifetime(0)
	s.writer.SetConnMaxIdleTime(0)

	var mode string
	if err := s.writer.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return nil, fmt.Errorf("idp: open sqlite %s: writer: %w", abs, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return nil, fmt.Errorf("idp: open sqlite %s: journal_mode is %q, want wal", abs, mode)
	}

	if s.migrationsApplied, err = sqliteMigrate(ctx, s.writer); err != nil {
		return nil, fmt.Errorf("idp: open sqlite %s: %w", abs, err)
	}

	// Readers: a pool of query-only connections. BeginTx with ReadOnly issues a plain
	// (deferred) BEGIN, whose snapshot is taken at the first read.
	s.reader, err = sql.Open("sqlite", sqliteDSN(abs, url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeoutMS),
			"mmap_size(268435456)",
			"query_only(1)",
		},
	}))
	if err != nil {
		return nil, fmt.Errorf("idp: open sqlite %s: reader: %w", abs, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.reader.SetMaxOpenConns(n)
	s.reader.SetMaxIdleConns(n) // keep connections (and their prepared statements) alive
	s.reader.SetConnMaxLifetime(0)
	s.reader.SetConnMaxIdleTime(0)

	for i, text := range sqliteStmtText {
		if s.wstmts[i], err = s.writer.PrepareContext(ctx, text); err != nil {
			return nil, fmt.Errorf("idp: open sqlite %s: prepare writer statement %d: %w", abs, i, err)
		}
	}
	for _, i := range sqliteReadStmts {
		if s.rstmts[i], err = s.reader.PrepareContext(ctx, sqliteStmtText[i]); err != nil {
			return nil, fmt.Errorf("idp: open sqlite %s: prepare reader statement %d: %w", abs, i, err)
		}
	}
	ok = true
	return s, nil
}

// sqliteDSN builds a file: URI for abs with the driver's query parameters. The path is
// percent-encoded so that '?', '#' and '%' in it cannot be taken for URI syntax.
func sqliteDSN(abs string, params url.Values) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.WriteString("file:")
	for _, c := range []byte(filepath.ToSlash(abs)) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '/':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	b.WriteByte('?')
	b.WriteString(params.Encode())
	return b.String()
}

// sqliteMigrate applies the pending migrations, each in its own transaction, and returns
// how many it applied.
func sqliteMigrate(ctx context.Context, db *sql.DB) (int, error) {
	if _, err := db.ExecContext(ctx,
		`CREATE TABLE IF NOT EXISTS schema_migrations(version INTEGER PRIMARY KEY)`); err != nil {
		return 0, fmt.Errorf("migrations: create schema_migrations: %w", err)
	}
	var current int
	if err := db.QueryRowContext(ctx,
		`SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return 0, fmt.Errorf("migrations: read schema version: %w", err)
	}
	if current > len(sqliteMigrations) {
		return 0, fmt.Errorf("migrations: database schema version %d is newer than this program's %d",
			current, len(sqliteMigrations))
	}
	applied := 0
	for i, stmt := range sqliteMigrations {
		did, err := sqliteApplyMigration(ctx, db, i+1, stmt)
		if err != nil {
			return applied, fmt.Errorf("migration %d: %w", i+1, err)
		}
		if did {
			applied++
		}
	}
	return applied, nil
}

// sqliteApplyMigration applies migration version unless it is already recorded. The check
// runs inside the (IMMEDIATE) transaction, so two processes opening the same file cannot
// both apply it.
func sqliteApplyMigration(ctx context.Context, db *sql.DB, version int, stmt string) (applied bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if !applied {
			tx.Rollback() // nothing written or already failed; the error that matters is err
		}
	}()
	var n int
	if err := tx.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
		return false, fmt.Errorf("check: %w", err)
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, stmt); err != nil {
		return false, fmt.Errorf("apply: %w", err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations(version) VALUES(?)`, version); err != nil {
		return false, fmt.Errorf("record: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("commit: %w", err)
	}
	return true, nil
}

// View implements Store.
func (s *SQLiteStore) View(ctx context.Context, fn func(Tx) error) (err error) {
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("idp: sqlite view: begin: %w", err)
	}
	t := &sqliteTx{ctx: ctx, tx: tx, stmts: &s.rstmts}
	defer func() {
		t.done = true
		// A read transaction has nothing to commit; ending it releases the snapshot. The
		// deferred call also runs when fn panics.
		if rbErr := tx.Rollback(); rbErr != nil && err == nil && !errors.Is(rbErr, sql.ErrTxDone) {
			err = fmt.Errorf("idp: sqlite view: end: %w", rbErr)
		}
	}()
	return fn(t)
}

// Update implements Store. The error returned by fn is passed through unchanged.
func (s *SQLiteStore) Update(ctx context.Context, fn func(Tx) error) error {
	tx, err := s.writer.BeginTx(ctx, nil) // BEGIN IMMEDIATE via _txlock
	if err != nil {
		return fmt.Errorf("idp: sqlite update: begin: %w", err)
	}
	t := &sqliteTx{ctx: ctx, tx: tx, stmts: &s.wstmts, writable: true}
	committed := false
	defer func() {
		t.done = true
		if !committed {
			// fn failed or panicked, or Commit failed (then database/sql has already ended
			// the transaction and this is a no-op). Either way nothing was written, and
			// the writer connection goes back to the pool.
			tx.Rollback()
		}
	}()
	if err := fn(t); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("idp: sqlite update: commit: %w", err)
	}
	committed = true
	return nil
}

// Close implements Store.
func (s *SQLiteStore) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		for _, st := range append(s.rstmts[:], s.wstmts[:]...) {
			if st != nil {
				if err := st.Close(); err != nil {
					errs = append(errs, fmt.Errorf("close statement: %w", err))
				}
			}
		}
		if s.reader != nil {
			if err := s.reader.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close reader: %w", err))
			}
		}
		if s.writer != nil {
			if err := s.writer.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close writer: %w", err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("idp: sqlite close: %w", err)
		}
	})
	return s.closeErr
}

// sqliteTx is a SQLiteStore transaction. Statements are bound to the transaction lazily,
// at most once each; database/sql reuses the statement already prepared on the
// transaction's connection.
type sqliteTx struct {
	ctx      context.Context
	tx       *sql.Tx
	stmts    *[sqlNumStmts]*sql.Stmt
	bound    [sqlNumStmts]*sql.Stmt
	writable bool
	done     bool
}

func (t *sqliteTx) check(op string, write bool) error {
	if t.done {
		return fmt.Errorf("idp: sqlite %s: %w", op, errStoreTxDone)
	}
	if write && !t.writable {
		return fmt.Errorf("idp: sqlite %s: %w", op, errStoreReadOnly)
	}
	return nil
}

func (t *sqliteTx) stmt(i int) *sql.Stmt {
	if st := t.bound[i]; st != nil {
		return st
	}
	st := t.tx.StmtContext(t.ctx, t.stmts[i]) // a failure surfaces when st is used
	t.bound[i] = st
	return st
}

// Get implements Tx. Error messages name the table but not the key, which may be a
// secret-derived identifier.
func (t *sqliteTx) Get(table, key string) ([]byte, error) {
	if err := t.check("get", false); err != nil {
		return nil, err
	}
	var v []byte
	err := t.stmt(sqlGet).QueryRowContext(t.ctx, table, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("idp: sqlite get from %q: %w", table, err)
	}
	return v, nil
}

func (t *sqliteTx) Put(table, key string, value []byte) error {
	if err := t.check("put", true); err != nil {
		return err
	}
	if value == nil {
		value = []byte{} // the driver binds a nil slice as NULL
	}
	if _, err := t.stmt(sqlPut).ExecContext(t.ctx, table, key, value); err != nil {
		return fmt.Errorf("idp: sqlite put into %q: %w", table, err)
	}
	return nil
}

func (t *sqliteTx) Delete(table, key string) error {
	if err := t.check("delete", true); err != nil {
		return err
	}
	if _, err := t.stmt(sqlDelete).ExecContext(t.ctx, table, key); err != nil {
		return fmt.Errorf("idp: sqlite delete from %q: %w", table, err)
	}
	return nil
}

// sqlitePrefixEnd returns the smallest string greater than every string with the given prefix,
// or false if there is none (the prefix is empty or all 0xFF bytes). SQLite compares TEXT
// with memcmp, like Go compares strings.
func sqlitePrefixEnd(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xFF {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

func (t *sqliteTx) List(table, prefix string) (out [][]byte, err error) {
	if err := t.check("list", false); err != nil {
		return nil, err
	}
	var rows *sql.Rows
	if end, ok := sqlitePrefixEnd(prefix); ok {
		rows, err = t.stmt(sqlList).QueryContext(t.ctx, table, prefix, end)
	} else {
		rows, err = t.stmt(sqlListFrom).QueryContext(t.ctx, table, prefix)
	}
	if err != nil {
		return nil, fmt.Errorf("idp: sqlite list %q: %w", table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var v []byte
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("idp: sqlite list %q: %w", table, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("idp: sqlite list %q: %w", table, err)
	}
	return out, nil
}

func (t *sqliteTx) Append(log string, value []byte) (int64, error) {
	if err := t.check("append", true); err != nil {
		return 0, err
	}
	if value == nil {
		value = []byte{}
	}
	var seq int64
	if err := t.stmt(sqlAppend).QueryRowContext(t.ctx, log, value).Scan(&seq); err != nil {
		return 0, fmt.Errorf("idp: sqlite append to log %q: %w", log, err)
	}
	return seq, nil
}

func (t *sqliteTx) Last(log string) (LogEntry, error) {
	if err := t.check("last", false); err != nil {
		return LogEntry{}, err
	}
	var e LogEntry
	err := t.stmt(sqlLast).QueryRowContext(t.ctx, log).Scan(&e.Seq, &e.Value)
	if errors.Is(err, sql.ErrNoRows) {
		return LogEntry{}, nil
	}
	if err != nil {
		return LogEntry{}, fmt.Errorf("idp: sqlite last of log %q: %w", log, err)
	}
	return e, nil
}

// ReadLog implements Tx. A limit <= 0 means no limit.
func (t *sqliteTx) ReadLog(log string, since int64, limit int) (out []LogEntry, err error) {
	if err := t.check("read log", false); err != nil {
		return nil, err
	}
	lim := int64(limit)
	if lim <= 0 {
		lim = -1 // SQLite: a negative LIMIT means no limit
	}
	rows, err := t.stmt(sqlReadLog).QueryContext(t.ctx, log, since, lim)
	if err != nil {
		return nil, fmt.Errorf("idp: sqlite read log %q: %w", log, err)
	}
	defer rows.Close()
	for rows.Next() {
		var e LogEntry
		if err := rows.Scan(&e.Seq, &e.Value); err != nil {
			return nil, fmt.Errorf("idp: sqlite read log %q: %w", log, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("idp: sqlite read log %q: %w", log, err)
	}
	return out, nil
}
