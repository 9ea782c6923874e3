package files

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// patternReader yields n bytes that differ per seed, cheaply, so every Put stores new
// content (an existing blob would take the idempotent shortcut).
type patternReader struct {
	seed, off, n int64
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	k := min(int64(len(b)), p.n-p.off)
	for i := range k {
		x := p.off + i
		b[i] = byte(x ^ x>>8 ^ p.seed)
	}
	if p.off == 0 && k >= 8 {
		for j := range 8 {
			b[j] = byte(p.seed >> (8 * j))
		}
	}
	p.off += k
	return int(k), nil
}

// rawWrite is the floor a blob write is measured against: the same bytes copied into a
// new file with io.Copy, fsynced and closed; no hashing, no rename.
func rawWrite(b *testing.B, dir string, i int, r io.Reader) {
	name := filepath.Join(dir, fmt.Sprintf("raw-%d", i))
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(f, r); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// cleanup removes what one iteration wrote, untimed, so long runs do not fill the disk.
func cleanup(b *testing.B, blobs *Blobs, sha, raw string) {
	b.StopTimer()
	blobs.Remove(sha)
	os.Remove(raw)
	b.StartTimer()
}

// BenchmarkBlobPut measures Blobs.Put (stream to a temp file while hashing and sniffing,
// fsync, rename, fsync the directory) against the raw floor of io.Copy to a file with
// fsync, alternating the two in the same run so both see the same disk and load.
func BenchmarkBlobPut(b *testing.B) {
	for _, size := range []int64{1 << 20, 16 << 20, 64 << 20} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			dir := b.TempDir()
			blobs, err := OpenBlobs(filepath.Join(dir, "blobs"))
			if err != nil {
				b.Fatal(err)
			}
			rawDir := filepath.Join(dir, "raw")
			os.Mkdir(rawDir, 0o700)
			var putTime, rawTime time.Duration
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				blob, err := blobs.Put(&patternReader{seed: int64(2 * i), n: size}, 0)
				if err != nil {
					b.Fatal(err)
				}
				putTime += time.Since(start)
				start = time.Now()
				rawWrite(b, rawDir, i, &patternReader{seed: int64(2*i + 1), n: size})
				rawTime += time.Since(start)
				cleanup(b, blobs, blob.SHA256, filepath.Join(rawDir, fmt.Sprintf("raw-%d", i)))
			}
			n := float64(b.N)
			mib := float64(size) / (1 << 20)
			putRate, rawRate := mib*n/putTime.Seconds(), mib*n/rawTime.Seconds()
			b.ReportMetric(putRate, "blob_MiB/s")
			b.ReportMetric(rawRate, "raw_MiB/s")
			b.ReportMetric(putRate/rawRate, "blob/raw")
		})
	}
}
