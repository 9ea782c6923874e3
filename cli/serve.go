package cli

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func serveCmd(version string, serve ServeFunc) *cobra.Command {
	cfg := ServeConfig{Version: version}
	rate, _ := strconv.Atoi(envOr("DOCKET_RATE_LIMIT", "600"))
	workers, _ := strconv.Atoi(envOr("DOCKET_WORKERS", "4"))
	maxFile, fileErr := strconv.ParseInt(envOr("DOCKET_MAX_FILE_SIZE", "104857600"), 10, 64)
	debounce, _ := time.ParseDuration(envOr("DOCKET_INTAKE_DEBOUNCE", "500ms"))
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the appliance: API, workers and dashboard",
		Long: "Runs docket in the foreground. On first start it creates the data directory, the database, the team \"Default\" " +
			"and the owner admin@localhost (password from DOCKET_ADMIN_PASSWORD, or generated and printed once).",
		RunE: func(cmd *cobra.Command, args []string) error {
			if fileErr != nil {
				return fmt.Errorf("DOCKET_MAX_FILE_SIZE %q: want a number of bytes, e.g. 104857600 for 100 MiB", os.Getenv("DOCKET_MAX_FILE_SIZE"))
			}
			if cfg.MaxFileSize < 1 {
				return fmt.Errorf("--max-file-size %d: want at least 1 byte", cfg.MaxFileSize)
			}
			for _, env := range []string{"DOCKET_SESSION_IDLE", "DOCKET_SESSION_MAX"} {
				if v := os.Getenv(env); v != "" {
					if _, err := time.ParseDuration(v); err != nil {
						return fmt.Errorf("%s=%q: want a duration such as 12h or 30m", env, v)
					}
				}
			}
			if cfg.SessionIdle <= 0 || cfg.SessionMax <= 0 {
				return fmt.Errorf("--session-idle %s, --session-max %s: both must be positive, e.g. 12h and 168h", cfg.SessionIdle, cfg.SessionMax)
			}
			if cfg.IntakeDebounce <= 0 {
				return fmt.Errorf("--intake-debounce %s: want a positive duration such as 500ms", cfg.IntakeDebounce)
			}
			if cfg.Workers < 1 {
				return fmt.Errorf("--workers %d: want at least 1", cfg.Workers)
			}
			switch cfg.LogFormat {
			case "text", "json":
			default:
				return fmt.Errorf("--log-format %q: want text or json", cfg.LogFormat)
			}
			TuneGC()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, cfg, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", envOr("DOCKET_ADDR", "127.0.0.1:8420"), "listen address (env DOCKET_ADDR)")
	dataFlag(cmd, &cfg.Data)
	f.StringVar(&cfg.LogFormat, "log-format", envOr("DOCKET_LOG_FORMAT", "text"), "log format: text or json (env DOCKET_LOG_FORMAT)")
	f.StringVar(&cfg.LogLevel, "log-level", envOr("DOCKET_LOG_LEVEL", "info"), "log level: debug, info, warn or error (env DOCKET_LOG_LEVEL)")
	f.StringVar(&cfg.Durability, "durability", envOr("DOCKET_DURABILITY", "normal"), "normal (survives a killed process) or full (also survives power loss; slower) (env DOCKET_DURABILITY)")
	f.IntVar(&cfg.RateLimit, "rate-limit", rate, "API requests per minute per key; -1 disables (env DOCKET_RATE_LIMIT)")
	f.Int64Var(&cfg.MaxBodyBytes, "max-body-bytes", 10<<20, "largest accepted JSON request body")
	f.Int64Var(&cfg.MaxFileSize, "max-file-size", maxFile, "largest accepted file in bytes: uploads and files runs write (env DOCKET_MAX_FILE_SIZE; default 100 MiB)")
	f.IntVar(&cfg.Workers, "workers", workers, "Jobs executed at once (env DOCKET_WORKERS)")
	f.DurationVar(&cfg.SessionIdle, "session-idle", envDuration("DOCKET_SESSION_IDLE", 12*time.Hour), "dashboard sign-in ends after this long without a request (env DOCKET_SESSION_IDLE)")
	f.DurationVar(&cfg.SessionMax, "session-max", envDuration("DOCKET_SESSION_MAX", 7*24*time.Hour), "dashboard sign-in ends this long after it began (env DOCKET_SESSION_MAX)")
	f.DurationVar(&cfg.IntakeDebounce, "intake-debounce", debounce, "how long a dropped file must stay unchanged before it is ingested (env DOCKET_INTAKE_DEBOUNCE)")
	return cmd
}

// envDuration reads a duration such as "12h" from the environment; an unreadable value
// falls back to def here and is reported when the command runs.
func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}
