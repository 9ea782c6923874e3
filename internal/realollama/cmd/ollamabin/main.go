// Command ollamabin prints the path of the ollama binary the real-model tests use, building
// the pinned version into the user cache first if needed. CI runs it before `go test` so the
// one long cold build happens outside any test's timeout:
//
//	export DOCKET_OLLAMA_BIN=$(go run ./internal/realollama/cmd/ollamabin)
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"docket/internal/realollama"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	bin, err := realollama.Binary(ctx, logf)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ollamabin:", err)
		os.Exit(1)
	}
	fmt.Println(bin)
}
