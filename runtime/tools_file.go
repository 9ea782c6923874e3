package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"docket/files"
	"docket/store"
)

// maxReadBytes bounds what read_file hands the model: a context window is not a disk.
const maxReadBytes = 64 << 10

// maxListEntries bounds one list_files answer.
const maxListEntries = 200

// RunDir is the folder of the team's files a run writes into: runs/<run_id>/.
func RunDir(runID string) string { return "runs/" + runID + "/" }

// fileTools let a run read and write files (DESIGN §5.2). Where a path leads:
//   - an absolute path (/workspace/data.csv) is a file of the sandbox the run was started
//     with (startRun sandbox_id); sandboxes are read-only to runs;
//   - a relative path is first the run's own file (runs/<run_id>/<path>), else the team
//     file at that path; write_file always writes the run's own file, so a run never
//     overwrites a team file it did not make.
//
// All three are idempotent: writes are content-addressed and rewriting the same content
// changes nothing.
func fileTools(st *store.Store, blobs *files.Blobs, maxSize int64) []*Tool {
	return []*Tool{
		{
			Name: "read_file",
			Description: "Read a text file. Relative paths are your own files first, then your team's files (e.g. invoices/a.csv); " +
				"absolute paths like /workspace/data.csv are the files you were given in your sandbox.",
			Schema: `{"type":"object","required":["path"],"properties":{"path":{"type":"string"}}}`,
			Run: func(ctx context.Context, c *Call) (string, error) {
				p, err := requireString(c.Args, "path")
				if err != nil {
					return "", err
				}
				sha, size, ctype, err := resolveRead(ctx, st, c.Run, p)
				if err != nil {
					return "", err
				}
				return readText(blobs, p, sha, size, ctype)
			},
		},
		{
			Name:        "write_file",
			Description: "Create or replace a text file in your run's folder (runs/<run id>/); it is attached to the run as an artifact.",
			Schema:      `{"type":"object","required":["path","content"],"properties":{"path":{"type":"string","description":"Relative, e.g. report.md or out/summary.csv"},"content":{"type":"string"}}}`,
			Run: func(ctx context.Context, c *Call) (string, error) {
				p, err := requireString(c.Args, "path")
				if err != nil {
					return "", err
				}
				content, ok := c.Args["content"].(string)
				if !ok {
					return "", fmt.Errorf(`argument "content" must be a string`)
				}
				full, err := runFilePath(c.Run.ID, p)
				if err != nil {
					return "", err
				}
				b, err := blobs.Put(strings.NewReader(content), maxSize)
				var tl *files.TooLargeError
				if errors.As(err, &tl) {
					return "", fmt.Errorf("content is %d bytes; a file holds at most %d", len(content), tl.Limit)
				}
				if err != nil {
					return "", err
				}
				f, err := st.WriteRunFile(ctx, c.Run, full, b.SHA256, b.Size, files.RefineContentType(full, b.ContentType))
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("saved %s (%d bytes)", f.Path, f.Size), nil
			},
		},
		{
			Name: "list_files",
			Description: "List files whose path starts with prefix: your team's files (your own are under runs/<run id>/), " +
				"or with a prefix starting with / the files of your sandbox.",
			Schema: `{"type":"object","properties":{"prefix":{"type":"string","description":"e.g. invoices/ or /workspace/; empty lists everything"}}}`,
			Run: func(ctx context.Context, c *Call) (string, error) {
				prefix := argString(c.Args, "prefix")
				type entry struct {
					Path        string `json:"path"`
					Size        int64  `json:"size"`
					ContentType string `json:"content_type"`
				}
				out := []entry{}
				total := 0
				if strings.HasPrefix(prefix, "/") {
					if c.Run.SandboxID == nil {
						return "", fmt.Errorf("this run has no sandbox: list team files with a relative prefix")
					}
					fs, err := st.ListSandboxFiles(ctx, *c.Run.SandboxID, prefix)
					if err != nil {
						return "", err
					}
					total = len(fs)
					for _, f := range fs[:min(len(fs), maxListEntries)] {
						out = append(out, entry{f.Path, f.Size, f.ContentType})
					}
				} else {
					clean, err := files.CleanPrefix("prefix", prefix)
					if err != nil {
						return "", err
					}
					fs, n, err := st.ListFiles(ctx, c.Run.TeamID, clean, maxListEntries, 0)
					if err != nil {
						return "", err
					}
					total = n
					for _, f := range fs {
						out = append(out, entry{f.Path, f.Size, f.ContentType})
					}
				}
				b, err := json.Marshal(map[string]any{"files": out, "total": total})
				return string(b), err
			},
		},
	}
}

// runFilePath places a relative path the model gave into the run's folder; a path that
// already names the run's folder is kept as it is.
func runFilePath(runID, p string) (string, error) {
	if strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("path %q: write_file takes a relative path such as report.md; it lands in %s", p, RunDir(runID))
	}
	rel := strings.TrimPrefix(p, RunDir(runID))
	if _, err := files.CleanPath("path", rel); err != nil {
		return "", err
	}
	return RunDir(runID) + rel, nil
}

// resolveRead finds the blob a read_file path names (see fileTools).
func resolveRead(ctx context.Context, st *store.Store, run store.Run, p string) (sha string, size int64, ctype string, err error) {
	if strings.HasPrefix(p, "/") {
		if run.SandboxID == nil {
			return "", 0, "", fmt.Errorf("path %q: this run has no sandbox; relative paths read your team's files", p)
		}
		clean, err := files.CleanSandboxPath("path", p)
		if err != nil {
			return "", 0, "", err
		}
		f, err := st.GetSandboxFile(ctx, *run.SandboxID, clean)
		if errors.Is(err, store.ErrNotFound) {
			return "", 0, "", fmt.Errorf("no file %s in your sandbox: list_files with prefix / shows what is there", clean)
		}
		return f.SHA256, f.Size, f.ContentType, err
	}
	clean, err := files.CleanPath("path", p)
	if err != nil {
		return "", 0, "", err
	}
	for _, candidate := range []string{RunDir(run.ID) + clean, clean} {
		f, err := st.GetFile(ctx, run.TeamID, candidate)
		if err == nil {
			return f.SHA256, f.Size, f.ContentType, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return "", 0, "", err
		}
	}
	return "", 0, "", fmt.Errorf("no file %s among your own or your team's files: list_files shows what is there", clean)
}

// readText returns a text blob's content, cut at maxReadBytes with a note saying so.
func readText(blobs *files.Blobs, name, sha string, size int64, ctype string) (string, error) {
	if !files.IsText(ctype) {
		return "", fmt.Errorf("%s is %s (%d bytes), not text: read_file reads text files only", name, ctype, size)
	}
	fh, err := blobs.Open(sha)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", name, err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxReadBytes))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) < size {
		// Do not cut a UTF-8 sequence in half.
		for i := 0; i < utf8.UTFMax-1 && len(b) > 0 && !utf8.Valid(b); i++ {
			b = b[:len(b)-1]
		}
		return string(b) + fmt.Sprintf("\n[truncated: showing the first %d of %d bytes]", len(b), size), nil
	}
	return string(b), nil
}
