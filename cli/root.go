// Package cli is the docket command tree: the server entry point and the admin commands
// that work on a data directory directly.
package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"docket/store"
)

// ServeConfig is everything `docket serve` is told through flags and environment.
type ServeConfig struct {
	Addr         string
	Data         string
	LogFormat    string
	LogLevel     string
	Durability   string
	RateLimit    int
	MaxBodyBytes int64
	Workers      int
	Version      string
	// SessionIdle and SessionMax bound dashboard sessions: idle time, and total age.
	SessionIdle time.Duration
	SessionMax  time.Duration
	// IntakeDebounce is how long a dropped file must stay unchanged before intake reads it.
	IntakeDebounce time.Duration
	// Ready, when set, is called with the address the server listens on once it serves.
	Ready func(addr string)

	// MaxFileSize caps one uploaded or run-written file, in bytes.
	MaxFileSize int64
}

// ServeFunc runs the appliance until ctx ends; main wires it.
type ServeFunc func(ctx context.Context, cfg ServeConfig, stdout io.Writer) error

// New returns the root command.
func New(version string, serve ServeFunc) *cobra.Command {
	root := &cobra.Command{
		Use:           "docket",
		Short:         "docket: a self-hosted operating layer for agent work",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(version, serve), apikeyCmd(), userCmd(), teamCmd(), auditCmd(), backupCmd(), doctorCmd())
	return root
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// dataFlag adds the --data flag every offline command shares.
func dataFlag(cmd *cobra.Command, dst *string) {
	cmd.Flags().StringVar(dst, "data", envOr("DOCKET_DATA", "./docket-data"), "data directory (env DOCKET_DATA)")
}

// openExisting opens the database of a data dir that `docket serve` has initialised.
// Offline commands never create one: a typo in --data should fail, not start afresh.
func openExisting(ctx context.Context, dir string) (*store.Store, error) {
	if !store.Exists(dir) {
		return nil, fmt.Errorf("no docket database in %s: start `docket serve --data %s` once to create it, or pass the right --data", dir, dir)
	}
	d, err := store.OpenDataDir(dir)
	if err != nil {
		return nil, err
	}
	return store.Open(ctx, d.DBPath(), store.Options{})
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
