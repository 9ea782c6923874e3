package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/spf13/cobra"

	"docket/runtime"
)

// check is one line of the doctor's report.
type check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	// Fix says what to do when the check failed.
	Fix string `json:"fix,omitempty"`
}

func doctorCmd() *cobra.Command {
	var data, model string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check that docket can run Jobs here: model backend, model, capabilities, tool mode, one model turn, data dir",
		Long: "Checks the Ollama server at OLLAMA_HOST (default http://127.0.0.1:11434), that the model is pulled, its capabilities and the " +
			"tool mode auto picks for it, one model turn with its timing, and that the data directory is writable. Exits 1 when any check fails, saying what to do.",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			checks := diagnose(ctx, runtime.OllamaHost(), model, data)
			failed := 0
			for _, c := range checks {
				if !c.OK {
					failed++
				}
			}
			if asJSON {
				if err := printJSON(cmd.OutOrStdout(), map[string]any{"ok": failed == 0, "checks": checks}); err != nil {
					return err
				}
			} else {
				printChecks(cmd.OutOrStdout(), checks)
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d checks failed", failed, len(checks))
			}
			return nil
		},
	}
	dataFlag(cmd, &data)
	cmd.Flags().StringVar(&model, "model", envOr("DOCKET_MODEL", "qwen3:4b"), "model to check (env DOCKET_MODEL)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the checks as JSON")
	return cmd
}

func printChecks(w io.Writer, checks []check) {
	for _, c := range checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "%s %-16s %s\n", mark, c.Name, c.Detail)
		if c.Fix != "" {
			fmt.Fprintf(w, "     %-16s fix: %s\n", "", c.Fix)
		}
	}
}

func diagnose(ctx context.Context, host, model, data string) []check {
	var out []check
	client, err := runtime.NewOllama(host)
	if err != nil {
		return append(out, check{Name: "model backend", Detail: err.Error(), Fix: "set OLLAMA_HOST to the Ollama server's URL"})
	}
	if v, err := client.Version(ctx); err != nil {
		out = append(out, check{Name: "model backend", Detail: fmt.Sprintf("unreachable at %s: %v", host, err),
			Fix: "start Ollama (`ollama serve`) or set OLLAMA_HOST to where it runs"})
	} else {
		out = append(out, check{Name: "model backend", OK: true, Detail: fmt.Sprintf("Ollama %s at %s", v, host)})
		out = append(out, modelChecks(ctx, client, model)...)
	}
	return append(out, dataDirCheck(data))
}

func modelChecks(ctx context.Context, client *runtime.OllamaClient, model string) []check {
	list, err := client.List(ctx)
	if err != nil {
		return []check{{Name: "model", Detail: fmt.Sprintf("cannot list models: %v", err), Fix: "check the Ollama server's log"}}
	}
	pulled := slices.ContainsFunc(list.Models, func(m api.ListModelResponse) bool {
		return m.Name == model || m.Model == model || strings.TrimSuffix(m.Name, ":latest") == model
	})
	if !pulled {
		return []check{{Name: "model", Detail: fmt.Sprintf("%q is not pulled", model), Fix: "ollama pull " + model}}
	}
	out := []check{{Name: "model", OK: true, Detail: fmt.Sprintf("%q is pulled", model)}}
	mode, caps, err := runtime.AutoToolMode(ctx, client, model)
	if err != nil {
		return append(out, check{Name: "capabilities", Detail: fmt.Sprintf("cannot read the model's capabilities: %v", err), Fix: "check the Ollama server's log"})
	}
	if mode == runtime.ToolModeNative {
		out = append(out,
			check{Name: "capabilities", OK: true, Detail: fmt.Sprintf("%q supports tools (%s)", model, strings.Join(caps, ", "))},
			check{Name: "tool mode", OK: true, Detail: "auto picks native: Ollama's own tool calling"})
	} else {
		out = append(out,
			check{Name: "capabilities", OK: true, Detail: fmt.Sprintf("%q has no tools capability (it has: %s)", model, strings.Join(caps, ", "))},
			check{Name: "tool mode", OK: true, Detail: "auto picks constrained: one JSON object per turn, enforced with Ollama's format (set options.tool_mode to override)"})
	}
	// A first call may load the model from disk: give it longer than the other checks.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	defer cancel()
	res, err := runtime.SmokeTurn(sctx, client, model, mode)
	if err != nil {
		return append(out, check{Name: "smoke test", Detail: fmt.Sprintf("one %s turn failed after %s: %v", mode, res.Took.Round(time.Millisecond), err),
			Fix: "check the Ollama server's log; a model that does not fit in memory fails here"})
	}
	m := res.Metrics
	detail := fmt.Sprintf("one %s turn in %s (Ollama: total %s, load %s, prompt %d tokens in %s, %d tokens generated in %s, done: %s)",
		mode, ms(res.Took), ms(m.TotalDuration), ms(m.LoadDuration), m.PromptEvalCount, ms(m.PromptEvalDuration), m.EvalCount, ms(m.EvalDuration), res.DoneReason)
	return append(out, check{Name: "smoke test", OK: true, Detail: detail})
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

// dataDirCheck proves docket can write where its data lives (or will live).
func dataDirCheck(data string) check {
	abs, _ := filepath.Abs(data)
	dir := abs
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		// Not created yet: serve creates it in its parent.
		dir = filepath.Dir(abs)
	}
	f, err := os.CreateTemp(dir, ".docket-doctor-*")
	if err != nil {
		return check{Name: "data dir", Detail: fmt.Sprintf("%s is not writable: %v", abs, err), Fix: "pass --data with a directory you can write, or fix its permissions"}
	}
	f.Close()
	os.Remove(f.Name())
	return check{Name: "data dir", OK: true, Detail: abs + " is writable"}
}
