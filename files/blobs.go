// Package files holds docket's file storage: the content-addressed blob store on disk, path
// rules for the team file tree, signed URLs and sandboxes' helpers.
package files

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// DefaultMaxFileSize is the largest file docket accepts unless told otherwise (--max-file-size).
const DefaultMaxFileSize int64 = 100 << 20

// Blob is stored content, named by the SHA-256 of its bytes.
type Blob struct {
	SHA256 string
	Size   int64
	// ContentType is sniffed from the first 512 bytes; RefineContentType improves it with
	// a file name when one is known.
	ContentType string
}

// TooLargeError says a Put was cut off at its limit; nothing was stored.
type TooLargeError struct {
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("content is larger than the limit of %d bytes", e.Limit)
}

// ErrBadHash is returned for a name that is not 64 lowercase hex digits.
var ErrBadHash = errors.New("not a sha256 hex digest")

// Blobs stores content under root/sha256/ab/cd/<hash>. Writes go to a temp file inside root
// (same file system), are fsynced and renamed into place, so a blob file is either absent
// or complete.
type Blobs struct {
	root string
	// mu orders Put's "already there" shortcut against GC's removal: Put holds it shared
	// while it finds and touches an existing blob, GC exclusively while it checks a
	// blob's age and deletes it, so a blob handed out by Put is never removed under it.
	mu sync.RWMutex
}

// OpenBlobs creates root (and its temp dir) if needed.
func OpenBlobs(root string) (*Blobs, error) {
	for _, d := range []string{root, filepath.Join(root, "tmp"), filepath.Join(root, "sha256")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create blob dir %s: %w", d, err)
		}
	}
	return &Blobs{root: root}, nil
}

// Root is the directory the blobs live in.
func (b *Blobs) Root() string { return b.root }

// ValidHash reports whether s is a lowercase hex SHA-256 digest.
func ValidHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Path is where the blob named sha lives (or would live).
func (b *Blobs) Path(sha string) (string, error) {
	if !ValidHash(sha) {
		return "", fmt.Errorf("blob %q: %w", sha, ErrBadHash)
	}
	return filepath.Join(b.root, "sha256", sha[:2], sha[2:4], sha), nil
}

// sniffWriter keeps the first 512 bytes written through it, for http.DetectContentType.
type sniffWriter struct{ buf []byte }

func (s *sniffWriter) Write(p []byte) (int, error) {
	if n := 512 - len(s.buf); n > 0 {
		s.buf = append(s.buf, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

// Put stores everything r yields, up to limit bytes (limit ≤ 0: no limit). More than limit
// bytes → *TooLargeError and nothing stored. Storing content that is already there is a
// no-op that returns the same Blob, so a retried write is harmless.
func (b *Blobs) Put(r io.Reader, limit int64) (Blob, error) {
	tmp, err := os.CreateTemp(filepath.Join(b.root, "tmp"), "put-*")
	if err != nil {
		return Blob{}, fmt.Errorf("blob temp file: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	sniff := &sniffWriter{buf: make([]byte, 0, 512)}
	src := r
	if limit > 0 {
		src = io.LimitReader(r, limit+1)
	}
	n, err := copyHashing(io.MultiWriter(tmp, sniff), h, src)
	if err != nil {
		return Blob{}, fmt.Errorf("write blob: %w", err)
	}
	if limit > 0 && n > limit {
		return Blob{}, &TooLargeError{Limit: limit}
	}
	blob := Blob{SHA256: hex.EncodeToString(h.Sum(nil)), Size: n, ContentType: http.DetectContentType(sniff.buf)}
	dest, _ := b.Path(blob.SHA256)

	b.mu.RLock()
	defer b.mu.RUnlock()
	if _, err := os.Stat(dest); err == nil {
		// Already stored: refresh its mtime so a GC running now sees it as fresh.
		now := time.Now()
		if err := os.Chtimes(dest, now, now); err != nil {
			return Blob{}, fmt.Errorf("touch blob: %w", err)
		}
		return blob, nil
	}
	if err := tmp.Sync(); err != nil {
		return Blob{}, fmt.Errorf("fsync blob: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return Blob{}, fmt.Errorf("close blob: %w", err)
	}
	dir := filepath.Dir(dest)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Blob{}, fmt.Errorf("create blob dir: %w", err)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return Blob{}, fmt.Errorf("rename blob into place: %w", err)
	}
	done = true
	// The rename is durable only once its directory entry is on disk.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return blob, nil
}

// copyHashing copies src to dst and feeds the same bytes to h on another goroutine:
// SHA-256 costs about as much as writing to the page cache, so overlapping the two is
// most of the difference between a blob write and a plain copy.
func copyHashing(dst io.Writer, h hash.Hash, src io.Reader) (int64, error) {
	const chunk, chunks = 256 << 10, 4
	free := make(chan []byte, chunks)
	for range chunks {
		free <- make([]byte, chunk)
	}
	toHash := make(chan []byte, chunks)
	hashed := make(chan struct{})
	go func() {
		for b := range toHash {
			h.Write(b)
			free <- b[:cap(b)]
		}
		close(hashed)
	}()
	defer func() {
		close(toHash)
		<-hashed
	}()
	var n int64
	for {
		buf := <-free
		k, rerr := io.ReadFull(src, buf)
		if k > 0 {
			if _, err := dst.Write(buf[:k]); err != nil {
				return n, err
			}
			n += int64(k)
			toHash <- buf[:k]
		}
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			return n, nil
		case rerr != nil:
			return n, rerr
		}
	}
}

// Open opens a stored blob for reading; a missing blob is fs.ErrNotExist.
func (b *Blobs) Open(sha string) (*os.File, error) {
	p, err := b.Path(sha)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

// Remove deletes a blob's file now, without asking whether anything points at it; GC is
// the safe way. A blob that is already gone is not an error.
func (b *Blobs) Remove(sha string) error {
	p, err := b.Path(sha)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// BlobIndex is what GC needs from the database: which blobs nothing points at, forgetting
// one of them (only if still unreferenced; false when something points at it again), and
// whether a blob file on disk is known at all.
type BlobIndex interface {
	UnreferencedBlobs(ctx context.Context, limit int) ([]string, error)
	ForgetBlob(ctx context.Context, sha string) (bool, error)
	BlobKnown(ctx context.Context, sha string) (bool, error)
}

// GCStats says what one GC pass did.
type GCStats struct {
	Removed int
	Kept    int
	Orphans int
}

// GC removes blobs nothing references. A blob whose file changed (was written or re-put)
// within grace is left for a later pass: a Put whose file row is not committed yet must
// not lose its blob. Files on disk the database does not know (a Put whose transaction
// failed) are removed once older than grace, as are stale temp files.
func (b *Blobs) GC(ctx context.Context, idx BlobIndex, grace time.Duration) (GCStats, error) {
	var st GCStats
	cutoff := time.Now().Add(-grace)
	shas, err := idx.UnreferencedBlobs(ctx, 10000)
	if err != nil {
		return st, fmt.Errorf("unreferenced blobs: %w", err)
	}
	for _, sha := range shas {
		removed, err := b.collect(ctx, sha, cutoff, func() (bool, error) { return idx.ForgetBlob(ctx, sha) })
		if err != nil {
			return st, err
		}
		if removed {
			st.Removed++
		} else {
			st.Kept++
		}
	}
	err = filepath.WalkDir(filepath.Join(b.root, "sha256"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !ValidHash(d.Name()) {
			return err
		}
		known, err := idx.BlobKnown(ctx, d.Name())
		if err != nil || known {
			return err
		}
		removed, err := b.collect(ctx, d.Name(), cutoff, func() (bool, error) {
			known, err := idx.BlobKnown(ctx, d.Name())
			return !known, err
		})
		if removed {
			st.Orphans++
		}
		return err
	})
	if err != nil {
		return st, fmt.Errorf("scan blobs: %w", err)
	}
	tmps, _ := os.ReadDir(filepath.Join(b.root, "tmp"))
	for _, t := range tmps {
		if info, err := t.Info(); err == nil && info.ModTime().Before(cutoff) {
			os.Remove(filepath.Join(b.root, "tmp", t.Name()))
		}
	}
	return st, nil
}

// collect removes one blob if its file is older than cutoff and forget agrees, all under
// the exclusive lock so no Put can hand the blob out in between.
func (b *Blobs) collect(ctx context.Context, sha string, cutoff time.Time, forget func() (bool, error)) (bool, error) {
	p, err := b.Path(sha)
	if err != nil {
		return false, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return false, err
	}
	info, err := os.Stat(p)
	if err == nil && info.ModTime().After(cutoff) {
		return false, nil
	}
	ok, err := forget()
	if err != nil || !ok {
		return false, err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("remove blob %s: %w", sha, err)
	}
	return true, nil
}

// genericTypes are what sniffing answers when it cannot tell; a file name's extension
// knows better (data.csv is text/csv, report.docx is not just a zip).
var genericTypes = map[string]bool{
	"application/octet-stream": true,
	"text/plain":               true,
	"application/zip":          true,
	"text/xml":                 true,
}

// RefineContentType returns the type for a blob stored under name: the extension's type
// (mime.TypeByExtension) when sniffing gave only a generic answer, else the sniffed type.
func RefineContentType(name, sniffed string) string {
	base, _, err := mime.ParseMediaType(sniffed)
	if err != nil || !genericTypes[base] {
		return sniffed
	}
	byExt := mime.TypeByExtension(strings.ToLower(filepath.Ext(name)))
	if byExt == "" {
		return sniffed
	}
	// Keep the sniffed charset for text the extension types without one.
	if strings.HasPrefix(byExt, "text/") && !strings.Contains(byExt, "charset") && strings.Contains(sniffed, "charset=") {
		if i := strings.Index(sniffed, ";"); i >= 0 {
			byExt += sniffed[i:]
		}
	}
	return byExt
}

// IsText reports whether content of this type can be shown as UTF-8 text.
func IsText(contentType string) bool {
	base, _, _ := mime.ParseMediaType(contentType)
	return strings.HasPrefix(base, "text/") || base == "application/json" || base == "application/xml" ||
		strings.HasSuffix(base, "+json") || strings.HasSuffix(base, "+xml") || base == "application/x-ndjson"
}
