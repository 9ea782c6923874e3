package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

	"docket/store"
)

// maxMemoryBytes bounds one memory file: memory is notes, not a file store.
const maxMemoryBytes = 256 << 10

// memoryTools give an assignment notes that persist across its runs.
func memoryTools(st *store.Store) []*Tool {
	return []*Tool{
		{
			Name:        "memory_read",
			Description: "Read one of your memory files (notes you kept from earlier runs).",
			Schema:      `{"type":"object","required":["path"],"properties":{"path":{"type":"string","description":"e.g. notes.md or customers/acme.md"}}}`,
			Run: func(ctx context.Context, c *Call) (string, error) {
				p, err := memoryPath(c.Args)
				if err != nil {
					return "", err
				}
				f, err := st.ReadMemory(ctx, c.Run.AgentID, p)
				if errors.Is(err, store.ErrNotFound) {
					return "", fmt.Errorf("no memory file %q: memory_list shows the ones you have", p)
				}
				return f.Content, err
			},
		},
		{
			Name:        "memory_write",
			Description: "Create or replace one of your memory files, to remember something for later runs.",
			Schema:      `{"type":"object","required":["path","content"],"properties":{"path":{"type":"string"},"content":{"type":"string"}}}`,
			Run: func(ctx context.Context, c *Call) (string, error) {
				p, err := memoryPath(c.Args)
				if err != nil {
					return "", err
				}
				content, ok := c.Args["content"].(string)
				if !ok {
					return "", fmt.Errorf(`argument "content" must be a string`)
				}
				if len(content) > maxMemoryBytes {
					return "", fmt.Errorf("content is %d bytes; a memory file holds at most %d", len(content), maxMemoryBytes)
				}
				if _, err := st.WriteMemory(ctx, c.Run.AgentID, p, content, c.Run.ID); err != nil {
					return "", err
				}
				return fmt.Sprintf("saved %s (%d bytes)", p, len(content)), nil
			},
		},
		{
			Name:        "memory_list",
			Description: "List your memory files.",
			Schema:      `{"type":"object","properties":{}}`,
			Run: func(ctx context.Context, c *Call) (string, error) {
				fs, err := st.ListMemory(ctx, c.Run.AgentID)
				if err != nil {
					return "", err
				}
				paths := make([]string, len(fs))
				for i, f := range fs {
					paths[i] = f.Path
				}
				b, err := json.Marshal(paths)
				return string(b), err
			},
		},
	}
}

// CleanMemoryPath confines a memory path: relative, no "..", at most 200 characters.
func CleanMemoryPath(p string) (string, error) {
	clean := path.Clean(strings.TrimPrefix(strings.TrimSpace(p), "/"))
	if p == "" || clean == "." || clean == ".." || strings.HasPrefix(clean, "../") || len(clean) > 200 || strings.ContainsRune(clean, 0) {
		return "", fmt.Errorf("path %q: use a relative path such as notes.md or customers/acme.md (no .., at most 200 characters)", p)
	}
	return clean, nil
}

func memoryPath(args map[string]any) (string, error) {
	p, err := requireString(args, "path")
	if err != nil {
		return "", err
	}
	return CleanMemoryPath(p)
}
