package web

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"docket/runtime"
	"docket/store"
)

type memoryFileJSON struct {
	Name             string     `json:"name"`
	Path             string     `json:"path"`
	UpdatedAt        *Timestamp `json:"updated_at,omitempty"`
	Generation       string     `json:"generation,omitempty" doc:"Changes whenever the content does."`
	SourceType       string     `json:"source_type,omitempty" enum:"job,user"`
	SourceAgentRunID string     `json:"source_agent_run_id,omitempty"`
	SourceUserID     string     `json:"source_user_id,omitempty"`
	SourceUpdatedAt  *Timestamp `json:"source_updated_at,omitempty"`
}

func memoryOut(f store.MemoryFile) memoryFileJSON {
	u := ts(f.UpdatedAt)
	out := memoryFileJSON{Name: f.Path[strings.LastIndex(f.Path, "/")+1:], Path: f.Path, UpdatedAt: &u, SourceUpdatedAt: &u,
		Generation: strconv.FormatInt(f.Generation, 10), SourceType: "user"}
	if f.SourceRunID != nil {
		out.SourceType, out.SourceAgentRunID = "job", *f.SourceRunID
	}
	if f.SourceUserID != nil {
		out.SourceUserID = *f.SourceUserID
	}
	return out
}

func (s *Server) registerMemory() {
	tags := []string{"Assignments"}
	huma.Register(s.api, s.op(huma.Operation{OperationID: "listAgentMemoryFiles", Method: http.MethodGet, Path: "/v2/agents/{agent_id}/memory/files",
		Summary: "List an Assignment's memory files", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *AgentPath) (*body[struct {
			Files []memoryFileJSON `json:"files"`
		}], error) {
			p := principal(ctx)
			if _, err := s.store.GetAgent(ctx, p.TeamID, in.AgentID, p.UserID); err != nil {
				return nil, fail(ctx, err)
			}
			fs, err := s.store.ListMemory(ctx, in.AgentID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[struct {
				Files []memoryFileJSON `json:"files"`
			}]{}
			out.Body.Files = []memoryFileJSON{}
			for _, f := range fs {
				out.Body.Files = append(out.Body.Files, memoryOut(f))
			}
			return out, nil
		})

	type fileOut struct {
		Path             string     `json:"path"`
		Content          string     `json:"content"`
		Generation       string     `json:"generation,omitempty"`
		SourceType       string     `json:"source_type,omitempty" enum:"job,user"`
		SourceAgentRunID string     `json:"source_agent_run_id,omitempty"`
		SourceUserID     string     `json:"source_user_id,omitempty"`
		SourceUpdatedAt  *Timestamp `json:"source_updated_at,omitempty"`
	}
	huma.Register(s.api, s.op(huma.Operation{OperationID: "getAgentMemoryFile", Method: http.MethodGet, Path: "/v2/agents/{agent_id}/memory/files/{path...}",
		Summary: "Read one of an Assignment's memory files", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *struct {
			AgentPath
			Path string `path:"path..." minLength:"1" doc:"Relative path of the memory file, e.g. notes.md or context/customer.md."`
		}) (*body[fileOut], error) {
			p := principal(ctx)
			if _, err := s.store.GetAgent(ctx, p.TeamID, in.AgentID, p.UserID); err != nil {
				return nil, fail(ctx, err)
			}
			clean, err := runtime.CleanMemoryPath(in.Path)
			if err != nil {
				return nil, badRequest("path: %s", err)
			}
			f, err := s.store.ReadMemory(ctx, in.AgentID, clean)
			if err != nil {
				return nil, fail(ctx, err)
			}
			m := memoryOut(f)
			return &body[fileOut]{Body: fileOut{Path: f.Path, Content: f.Content, Generation: m.Generation, SourceType: m.SourceType,
				SourceAgentRunID: m.SourceAgentRunID, SourceUserID: m.SourceUserID, SourceUpdatedAt: m.SourceUpdatedAt}}, nil
		})
}

// wildcardMux lets huma read a trailing {name...} wildcard: huma asks the request for
// the parameter "name...", while the stdlib mux stores it as "name".
type wildcardMux struct{ *http.ServeMux }

func (m wildcardMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	i := strings.LastIndex(pattern, "{")
	name, ok := strings.CutSuffix(pattern[i+1:], "...}")
	if i < 0 || !ok {
		m.ServeMux.HandleFunc(pattern, h)
		return
	}
	m.ServeMux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		r.SetPathValue(name+"...", r.PathValue(name))
		h(w, r)
	})
}

// referenceWildcards publishes {name...} paths the way the reference writes them, {*}.
func referenceWildcards(o *huma.OpenAPI) {
	for path, item := range o.Paths {
		i := strings.LastIndex(path, "{")
		if i < 0 || !strings.HasSuffix(path, "...}") {
			continue
		}
		delete(o.Paths, path)
		o.Paths[path[:i]+"{*}"] = item
		for _, op := range []*huma.Operation{item.Get, item.Put, item.Post, item.Patch, item.Delete} {
			if op == nil {
				continue
			}
			for _, p := range op.Parameters {
				if p.In == "path" && strings.HasSuffix(p.Name, "...") {
					p.Name = "*"
				}
			}
		}
	}
}
