package files

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPutStoresContentByHashAndIsIdempotent(t *testing.T) {
	b, err := OpenBlobs(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	body := "id,name\n1,Ada\n"
	sum := sha256.Sum256([]byte(body))
	want := hex.EncodeToString(sum[:])
	got, err := b.Put(strings.NewReader(body), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if got.SHA256 != want || got.Size != int64(len(body)) || !strings.HasPrefix(got.ContentType, "text/plain") {
		t.Fatalf("Put = %+v, want sha %s size %d text/plain", got, want, len(body))
	}
	p := filepath.Join(b.Root(), "sha256", want[:2], want[2:4], want)
	if data, err := os.ReadFile(p); err != nil || string(data) != body {
		t.Fatalf("blob file %s: %q %v", p, data, err)
	}
	again, err := b.Put(strings.NewReader(body), 1<<20)
	if err != nil || again != got {
		t.Fatalf("re-put = %+v %v, want %+v", again, err, got)
	}
	if tmps, _ := os.ReadDir(filepath.Join(b.Root(), "tmp")); len(tmps) != 0 {
		t.Fatalf("temp files left behind: %d", len(tmps))
	}
	f, err := b.Open(want)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(f)
	f.Close()
	if string(data) != body {
		t.Fatalf("Open read %q", data)
	}
	if _, err := b.Open("../../etc/passwd"); !errors.Is(err, ErrBadHash) {
		t.Fatalf("Open of a non-hash: %v, want ErrBadHash", err)
	}
}

func TestPutOverLimitStoresNothing(t *testing.T) {
	b, _ := OpenBlobs(filepath.Join(t.TempDir(), "blobs"))
	_, err := b.Put(bytes.NewReader(make([]byte, 1025)), 1024)
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Limit != 1024 {
		t.Fatalf("Put over the limit: %v, want TooLargeError{1024}", err)
	}
	if _, err := b.Put(bytes.NewReader(make([]byte, 1024)), 1024); err != nil {
		t.Fatalf("exactly at the limit: %v", err)
	}
	tmps, _ := os.ReadDir(filepath.Join(b.Root(), "tmp"))
	if len(tmps) != 0 {
		t.Fatalf("a refused put left %d temp files", len(tmps))
	}
}

func TestRefineContentType(t *testing.T) {
	for _, c := range []struct{ name, sniffed, want string }{
		{"a.csv", "text/plain; charset=utf-8", "text/csv; charset=utf-8"},
		{"a.json", "text/plain; charset=utf-8", "application/json"},
		{"a.bin", "application/octet-stream", "application/octet-stream"},
		{"photo.txt", "image/png", "image/png"},
		{"r.pdf", "application/pdf", "application/pdf"},
		{"noext", "text/plain; charset=utf-8", "text/plain; charset=utf-8"},
	} {
		if got := RefineContentType(c.name, c.sniffed); got != c.want {
			t.Errorf("RefineContentType(%q, %q) = %q, want %q", c.name, c.sniffed, got, c.want)
		}
	}
}

// memIndex is a BlobIndex over a map of sha → reference count.
type memIndex map[string]int

func (m memIndex) UnreferencedBlobs(ctx context.Context, limit int) ([]string, error) {
	var out []string
	for k, v := range m {
		if v == 0 {
			out = append(out, k)
		}
	}
	return out, nil
}

func (m memIndex) ForgetBlob(ctx context.Context, sha string) (bool, error) {
	if m[sha] != 0 {
		return false, nil
	}
	delete(m, sha)
	return true, nil
}

func (m memIndex) BlobKnown(ctx context.Context, sha string) (bool, error) {
	_, ok := m[sha]
	return ok, nil
}

func TestGCRemovesOnlyUnreferencedBlobsPastGrace(t *testing.T) {
	b, _ := OpenBlobs(filepath.Join(t.TempDir(), "blobs"))
	kept, _ := b.Put(strings.NewReader("kept"), 0)
	gone, _ := b.Put(strings.NewReader("gone"), 0)
	orphan, _ := b.Put(strings.NewReader("orphan"), 0)
	idx := memIndex{kept.SHA256: 1, gone.SHA256: 0}
	ctx := context.Background()

	st, err := b.GC(ctx, idx, time.Hour)
	if err != nil || st.Removed != 0 || st.Orphans != 0 {
		t.Fatalf("GC within grace: %+v %v, want nothing removed", st, err)
	}
	st, err = b.GC(ctx, idx, 0)
	if err != nil || st.Removed != 1 || st.Orphans != 1 {
		t.Fatalf("GC past grace: %+v %v, want 1 removed and 1 orphan", st, err)
	}
	for sha, exists := range map[string]bool{kept.SHA256: true, gone.SHA256: false, orphan.SHA256: false} {
		p, _ := b.Path(sha)
		if _, err := os.Stat(p); (err == nil) != exists {
			t.Errorf("blob %s exists=%v, want %v", sha[:8], err == nil, exists)
		}
	}
}

func TestCleanPathRefusesEscapes(t *testing.T) {
	for _, p := range []string{"", "../x", "a/../../x", "/etc/passwd", "a\x00b", "a//b", "a/", "./a", "a/./b", `a\b`, "C:/x", "a\nb", "..", strings.Repeat("x", 300)} {
		if _, err := CleanPath("path", p); err == nil {
			t.Errorf("CleanPath(%q) accepted", p)
		} else if !strings.Contains(err.Error(), "path ") {
			t.Errorf("CleanPath(%q) error does not name the field: %v", p, err)
		}
	}
	for _, p := range []string{"a.pdf", "invoices/2026/a.pdf", "runs/0190/out.txt", "ünïcode/名前.txt", "a..b/c"} {
		if got, err := CleanPath("path", p); err != nil || got != p {
			t.Errorf("CleanPath(%q) = %q, %v", p, got, err)
		}
	}
	if got, err := CleanSandboxPath("path", "data.csv"); err != nil || got != "/workspace/data.csv" {
		t.Errorf("CleanSandboxPath(data.csv) = %q, %v", got, err)
	}
	if _, err := CleanSandboxPath("path", "/workspace/../etc/passwd"); err == nil {
		t.Error("CleanSandboxPath accepted an escape")
	}
}

// Concurrent puts of the same content all succeed with one complete blob file and no
// temp files, whenever a GC that finds the blob unreferenced runs among them.
func TestConcurrentPutsAndGC(t *testing.T) {
	b, _ := OpenBlobs(filepath.Join(t.TempDir(), "blobs"))
	content := strings.Repeat("same bytes ", 100000)
	sum := sha256.Sum256([]byte(content))
	sha := hex.EncodeToString(sum[:])
	idx := memIndex{sha: 0}
	var wg sync.WaitGroup
	errs := make(chan error, 9)
	for range 8 {
		wg.Go(func() {
			got, err := b.Put(strings.NewReader(content), 0)
			if err == nil && got.SHA256 != sha {
				err = fmt.Errorf("sha %s", got.SHA256)
			}
			errs <- err
		})
	}
	wg.Go(func() {
		_, err := b.GC(context.Background(), idx, time.Hour)
		errs <- err
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	p, _ := b.Path(sha)
	if data, err := os.ReadFile(p); err != nil || string(data) != content {
		t.Fatalf("blob after concurrent puts: %v", err)
	}
	if tmps, _ := os.ReadDir(filepath.Join(b.Root(), "tmp")); len(tmps) != 0 {
		t.Fatalf("%d temp files left", len(tmps))
	}
}
