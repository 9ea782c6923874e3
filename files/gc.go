package files

import (
	"context"
	"log/slog"
	"time"
)

// GCGrace is how recent a blob write must be for GC to leave it alone although nothing
// references it yet: the window between a Put and the commit of its file row.
const GCGrace = time.Hour

// Collectable is what the collector needs from the database: expired sandboxes to drop
// (their files release their blobs) and the blob index.
type Collectable interface {
	BlobIndex
	DeleteExpiredSandboxes(ctx context.Context) (int, error)
}

// Collect drops expired sandboxes, then removes the blobs nothing references any more.
func Collect(ctx context.Context, b *Blobs, db Collectable, grace time.Duration) (GCStats, int, error) {
	sandboxes, err := db.DeleteExpiredSandboxes(ctx)
	if err != nil {
		return GCStats{}, 0, err
	}
	st, err := b.GC(ctx, db, grace)
	return st, sandboxes, err
}

// CollectLoop runs Collect every interval until ctx ends.
func CollectLoop(ctx context.Context, b *Blobs, db Collectable, interval time.Duration, log *slog.Logger) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		st, sandboxes, err := Collect(ctx, b, db, GCGrace)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("file garbage collection failed", "err", err)
		case st.Removed+st.Orphans+sandboxes > 0:
			log.Info("file garbage collected", "blobs_removed", st.Removed, "orphans_removed", st.Orphans, "sandboxes_expired", sandboxes)
		}
	}
}
