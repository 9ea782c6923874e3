package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DataDir is the folder that holds everything docket keeps: the database, its secrets
// and (later) blobs and intake folders.
type DataDir struct {
	Path string
}

// DBFile is the database's file name inside the data dir.
const DBFile = "docket.db"

// masterKeyFile holds the 32-byte key every server secret (encrypted secrets, signed URLs,
// session cookies) derives from. It never leaves the data dir.
const masterKeyFile = "master.key"

// OpenDataDir creates dir (0700) if needed and makes sure its master key exists (0600).
func OpenDataDir(dir string) (DataDir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return DataDir{}, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return DataDir{}, fmt.Errorf("create data dir %s: %w", abs, err)
	}
	d := DataDir{Path: abs}
	if _, err := d.MasterKey(); errors.Is(err, fs.ErrNotExist) && os.Getenv("DOCKET_MASTER_KEY") == "" {
		key := make([]byte, 32)
		rand.Read(key)
		if err := os.WriteFile(filepath.Join(abs, masterKeyFile), []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
			return DataDir{}, fmt.Errorf("write master key: %w", err)
		}
	} else if err != nil {
		return DataDir{}, err
	}
	return d, nil
}

// DBPath is the database file.
func (d DataDir) DBPath() string { return filepath.Join(d.Path, DBFile) }

// MasterKey returns the server's master key: DOCKET_MASTER_KEY (64 hex digits) when set,
// else <data>/master.key.
func (d DataDir) MasterKey() ([]byte, error) {
	src := "DOCKET_MASTER_KEY"
	text := os.Getenv(src)
	if text == "" {
		src = filepath.Join(d.Path, masterKeyFile)
		b, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		text = string(b)
	}
	key, err := hex.DecodeString(strings.TrimSpace(text))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%s: want 64 hex digits (a 32-byte key)", src)
	}
	return key, nil
}

// Exists reports whether dir already holds a docket database.
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, DBFile))
	return err == nil
}
