package web

import (
	"net/http"
	"sort"

	"github.com/a-h/templ"
	"github.com/danielgtaylor/huma/v2"

	"docket/store"
)

// docs renders the API reference from the same registry that serves the API, so it can
// never drift from it. It is server-rendered: the box may be offline, no CDN.
func (s *Server) docs(w http.ResponseWriter, r *http.Request) {
	byTag := map[string][]docOp{}
	for path, item := range s.api.OpenAPI().Paths {
		for method, op := range map[string]*huma.Operation{"GET": item.Get, "POST": item.Post, "PATCH": item.Patch, "PUT": item.Put, "DELETE": item.Delete} {
			if op == nil {
				continue
			}
			tag := "Other"
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			role, _ := op.Metadata[metaRole].(store.Role)
			byTag[tag] = append(byTag[tag], docOp{Method: method, Path: path, ID: op.OperationID, Summary: op.Summary, Role: string(role) + "+"})
		}
	}
	groups := make([]docGroup, 0, len(byTag))
	for tag, ops := range byTag {
		sort.Slice(ops, func(i, j int) bool {
			if ops[i].Path != ops[j].Path {
				return ops[i].Path < ops[j].Path
			}
			return ops[i].Method < ops[j].Method
		})
		groups = append(groups, docGroup{Tag: tag, Ops: ops})
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].Tag < groups[j].Tag })
	templ.Handler(docsPage(s.cfg.Version, groups)).ServeHTTP(w, r)
}
