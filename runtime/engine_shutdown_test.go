package runtime_test

import (
	"context"
	"path/filepath"
	"testing"

	"docket/runtime"
	"docket/store"
)

// A serve that gets SIGTERM right after it starts cancels the engine before its start-up
// recovery has run; that is a clean shutdown, not an error that makes serve exit 1.
func TestEngineCancelledBeforeStartStopsCleanly(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), store.DBFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := runtime.New(runtime.Config{Store: st, Workers: 2}).Run(ctx); err != nil {
		t.Fatalf("Run on a context cancelled before start = %v, want nil (a clean stop)", err)
	}
}
