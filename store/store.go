// Package store is docket's only package with SQL: the embedded SQLite database, its
// migrations, the domain types and the transactions that change them.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Options tune how the database is opened.
type Options struct {
	// Durability "full" makes every commit survive an OS crash or power loss
	// (synchronous=FULL); the default "normal" survives a killed process.
	Durability string
	// Readers is the size of the read pool; 0 means max(4, GOMAXPROCS).
	Readers int
	// CaseBackoff is how long a case waits before its next attempt after an
	// infrastructure failure; nil means attempt⁴ s plus up to 1 s of jitter (DESIGN §4).
	CaseBackoff func(attempt int) time.Duration
}

// Store holds one writer connection and a pool of readers. Every write goes through
// the writer, so writes never race each other for SQLite's lock inside the process.
type Store struct {
	w           *sql.DB
	r           *sql.DB
	path        string
	now         func() time.Time
	caseBackoff func(attempt int) time.Duration
}

// Open opens (creating if needed) the database file at path and applies pending migrations.
func Open(ctx context.Context, path string, opt Options) (*Store, error) {
	sync := "NORMAL"
	switch opt.Durability {
	case "", "normal":
	case "full":
		sync = "FULL"
	default:
		return nil, fmt.Errorf("durability %q: want normal or full", opt.Durability)
	}
	readers := opt.Readers
	if readers <= 0 {
		readers = max(4, runtime.GOMAXPROCS(0))
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(" + sync + ")", "foreign_keys(ON)"} {
		q.Add("_pragma", p)
	}
	wq := url.Values{"_pragma": q["_pragma"], "_txlock": {"immediate"}}
	w, err := openCached("file:" + path + "?" + wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	r, err := openCached("file:" + path + "?" + q.Encode() + "&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	s := &Store{w: w, r: r, path: path, now: time.Now, caseBackoff: opt.CaseBackoff}
	if s.caseBackoff == nil {
		s.caseBackoff = retryBackoff
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close closes both pools.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// CheckWritable proves the writer can take SQLite's write lock (used by /readyz).
func (s *Store) CheckWritable(ctx context.Context) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	return tx.Rollback()
}

// Backup writes a consistent copy of the live database to dest (VACUUM INTO), safe
// while the server runs.
func (s *Store) Backup(ctx context.Context, dest string) error {
	if _, err := s.w.ExecContext(ctx, "VACUUM INTO ?", dest); err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	return nil
}

// NewID returns a UUIDv7: time-ordered, so ids sort by creation and index well.
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

func (s *Store) nowMs() int64 { return s.now().UnixMilli() }

// Time converts a stored unix-millisecond value to UTC.
func Time(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func timePtr(ms sql.NullInt64) *time.Time {
	if !ms.Valid {
		return nil
	}
	t := Time(ms.Int64)
	return &t
}

func strPtr(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	return &s.String
}

func nullStr(p *string) sql.NullString {
	if p == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: *p, Valid: true}
}

// write runs fn in one immediate transaction on the writer.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// mutate runs fn and appends the audit row for it in the same transaction: a change
// and its audit entry commit together or not at all.
func (s *Store) mutate(ctx context.Context, a Actor, fn func(tx *sql.Tx) (Target, error)) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		t, err := fn(tx)
		if err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, a, a.TeamID, t, "success")
	})
}
