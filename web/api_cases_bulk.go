package web

import (
	"context"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"docket/store"
)

// CaseSelectionBody is how a bulk operation names its cases: case_ids, or all_matching
// with filters and search. It is exported because the bulk bodies embed it: huma leaves
// an unexported embedded struct's fields out of the schema, and so would reject them.
type CaseSelectionBody struct {
	CaseIDs     []string         `json:"case_ids,omitempty" minItems:"1" maxItems:"100" format:"uuid" doc:"Explicit case IDs to act on (1-100). Provide this or set all_matching."`
	AllMatching bool             `json:"all_matching,omitempty" doc:"When true, act on every case matching the provided filters/search instead of an explicit id list."`
	Filters     *caseFiltersBody `json:"filters,omitempty" doc:"Filters selecting the cases when all_matching is true."`
	Search      *string          `json:"search,omitempty" maxLength:"1000" doc:"Free-text search selecting the cases when all_matching is true."`
}

// selection validates the body into a store selection.
func (b CaseSelectionBody) selection() (store.CaseSelection, error) {
	switch {
	case len(b.CaseIDs) > 0 && b.AllMatching:
		return store.CaseSelection{}, badRequest("case_ids and all_matching: name the cases with case_ids or select them with all_matching: true, not both")
	case len(b.CaseIDs) > 0:
		if b.Filters != nil || b.Search != nil {
			return store.CaseSelection{}, badRequest("filters and search apply only with all_matching: true; with case_ids, leave them out")
		}
		return store.CaseSelection{IDs: b.CaseIDs}, nil
	case !b.AllMatching:
		return store.CaseSelection{}, badRequest("case_ids is required (1-100 case ids), or set all_matching: true to act on every case matching filters and search")
	}
	var search string
	if b.Search != nil {
		search = *b.Search
	}
	f, err := b.Filters.filter("filters.", search)
	return store.CaseSelection{AllMatching: true, Filter: f}, err
}

type bulkReprocessIn struct {
	QueueCasesPath
	Body struct {
		CaseSelectionBody
		AgentID string `json:"agent_id,omitempty" format:"uuid" doc:"The Assignment that should run the cases; it must have an enabled case trigger on this queue. Recorded on each case's reprocess event."`
	}
}

type bulkReprocessOut struct {
	ReprocessedCount int `json:"reprocessedCount"`
	SkippedCount     int `json:"skippedCount" doc:"Selected cases left as they were: a run holds them, or (for case_ids) they are not cases of this queue."`
	DelegatedCount   int `json:"delegatedCount" doc:"Deprecated alias of reprocessedCount, for clients redirected from bulk-delegate."`
	RetriedCount     int `json:"retriedCount" doc:"Deprecated alias of reprocessedCount, for clients redirected from bulk-retry."`
}

type bulkStatusIn struct {
	QueueCasesPath
	Body struct {
		CaseSelectionBody
		Status string `json:"status" enum:"pending,completed,failed" doc:"Target status: completed and failed end a case; pending resets it so the queue's consumer picks it up again."`
	}
}

type bulkStatusOut struct {
	UpdatedCount      int      `json:"updatedCount"`
	SkippedCount      int      `json:"skippedCount" doc:"Selected cases left as they were: already in the status, held by a run, or (for case_ids) not cases of this queue."`
	InterruptedRunIDs []string `json:"interruptedRunIds" doc:"Always empty: docket skips cases a run holds instead of interrupting the run."`
}

type bulkPriorityOut struct {
	UpdatedCount int `json:"updatedCount"`
	SkippedCount int `json:"skippedCount" doc:"Selected cases left as they were: already at the priority, or (for case_ids) not cases of this queue."`
}

type bulkPriorityIn struct {
	QueueCasesPath
	Body struct {
		CaseSelectionBody
		Priority string `json:"priority" enum:"none,medium,high" doc:"Target priority; none clears it."`
	}
}

type bulkDeleteIn struct {
	QueueCasesPath
	Body struct {
		CaseSelectionBody
	}
}

type bulkDeleteOut struct {
	DeletedCount      int      `json:"deletedCount"`
	InterruptedRunIDs []string `json:"interruptedRunIds" doc:"Always empty: docket skips cases a run holds instead of interrupting the run."`
	SkippedCount      int      `json:"skippedCount" doc:"docket addition: selected cases not deleted because a run holds them or (for case_ids) they are not cases of this queue."`
}

type bulkLabelsIn struct {
	QueueCasesPath
	Body struct {
		CaseSelectionBody
		Labels []newCaseLabelBody `json:"labels" minItems:"1" maxItems:"50" doc:"Labels to put on the cases; missing ones are created on the queue."`
	}
}

type bulkLabelsOut struct {
	UpdatedCount int `json:"updatedCount"`
	SkippedCount int `json:"skippedCount" doc:"Selected cases left as they were: they carry every label already, or (for case_ids) are not cases of this queue."`
}

// redirectOut is a 308 to bulk-reprocess: the client repeats the same POST there.
type redirectOut struct {
	Status   int
	Location string `header:"Location"`
}

// redirectOnly reports whether path is one of the deprecated bulk verbs that only
// redirect: the idempotency layer must let them through, or the client's follow-up
// POST to bulk-reprocess with the same Idempotency-Key would look like key reuse.
func redirectOnly(path string) bool {
	return strings.HasPrefix(path, "/v2/queues/") && (strings.HasSuffix(path, "/cases/bulk-retry") || strings.HasSuffix(path, "/cases/bulk-delegate"))
}

func (s *Server) registerCasesBulk() {
	tags := []string{"Cases"}
	huma.Register(s.api, s.op(huma.Operation{OperationID: "bulkReprocessCases", Method: http.MethodPost, Path: "/v2/queues/{queue_id}/cases/bulk-reprocess",
		Summary: "Reset the selected cases to pending so the queue's consumer runs them again on its live Setup", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *bulkReprocessIn) (*body[bulkReprocessOut], error) {
			sel, err := in.Body.selection()
			if err != nil {
				return nil, err
			}
			res, err := s.store.ReprocessCases(ctx, actor(ctx), in.QueueID, sel, in.Body.AgentID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			s.wakeDispatcher()
			n := res.Changed
			return &body[bulkReprocessOut]{Body: bulkReprocessOut{ReprocessedCount: n, SkippedCount: res.Skipped, DelegatedCount: n, RetriedCount: n}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "bulkUpdateCaseStatus", Method: http.MethodPost, Path: "/v2/queues/{queue_id}/cases/bulk-update-status",
		Summary: "Set the status of the selected cases no run holds", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *bulkStatusIn) (*body[bulkStatusOut], error) {
			sel, err := in.Body.selection()
			if err != nil {
				return nil, err
			}
			res, err := s.store.SetCasesStatus(ctx, actor(ctx), in.QueueID, sel, in.Body.Status)
			if err != nil {
				return nil, fail(ctx, err)
			}
			s.wakeDispatcher()
			return &body[bulkStatusOut]{Body: bulkStatusOut{UpdatedCount: res.Changed, SkippedCount: res.Skipped, InterruptedRunIDs: []string{}}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "bulkUpdateCasePriority", Method: http.MethodPost, Path: "/v2/queues/{queue_id}/cases/bulk-update-priority",
		Summary: "Set the priority of the selected cases", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *bulkPriorityIn) (*body[bulkPriorityOut], error) {
			sel, err := in.Body.selection()
			if err != nil {
				return nil, err
			}
			res, err := s.store.SetCasesPriority(ctx, actor(ctx), in.QueueID, sel, in.Body.Priority)
			if err != nil {
				return nil, fail(ctx, err)
			}
			s.wakeDispatcher()
			return &body[bulkPriorityOut]{Body: bulkPriorityOut{UpdatedCount: res.Changed, SkippedCount: res.Skipped}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "bulkDeleteCases", Method: http.MethodPost, Path: "/v2/queues/{queue_id}/cases/bulk-delete",
		Summary: "Delete the selected cases no run holds", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *bulkDeleteIn) (*body[bulkDeleteOut], error) {
			sel, err := in.Body.selection()
			if err != nil {
				return nil, err
			}
			res, err := s.store.DeleteCases(ctx, actor(ctx), in.QueueID, sel)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[bulkDeleteOut]{Body: bulkDeleteOut{DeletedCount: res.Changed, InterruptedRunIDs: []string{}, SkippedCount: res.Skipped}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "bulkAddCaseLabels", Method: http.MethodPost, Path: "/v2/queues/{queue_id}/cases/bulk-add-labels",
		Summary: "Put labels on the selected cases (docket addition)", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *bulkLabelsIn) (*body[bulkLabelsOut], error) {
			sel, err := in.Body.selection()
			if err != nil {
				return nil, err
			}
			kv := make([]store.LabelKV, len(in.Body.Labels))
			for i, l := range in.Body.Labels {
				kv[i] = store.LabelKV{Key: l.Key, Value: l.Value}
			}
			res, err := s.store.LabelCases(ctx, actor(ctx), in.QueueID, sel, kv)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[bulkLabelsOut]{Body: bulkLabelsOut{UpdatedCount: res.Changed, SkippedCount: res.Skipped}}, nil
		})

	redirect := func(queueID string) (*redirectOut, error) {
		return &redirectOut{Status: http.StatusPermanentRedirect, Location: "/v2/queues/" + queueID + "/cases/bulk-reprocess"}, nil
	}
	// The deprecated verbs keep the reference's bodies in the schema, but any body is
	// forwarded as is: bulk-reprocess validates it.
	huma.Register(s.api, s.op(huma.Operation{OperationID: "bulkRetryCases", Method: http.MethodPost, Path: "/v2/queues/{queue_id}/cases/bulk-retry",
		Summary: "Deprecated: answers 308 to bulk-reprocess", Deprecated: true, DefaultStatus: http.StatusPermanentRedirect, SkipValidateBody: true, Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *struct {
			QueueCasesPath
			Body struct {
				CaseIDs []string `json:"case_ids" minItems:"1" maxItems:"100" format:"uuid" doc:"Case IDs to retry (1-100)."`
			}
		}) (*redirectOut, error) {
			return redirect(in.QueueID)
		})
	huma.Register(s.api, s.op(huma.Operation{OperationID: "bulkDelegateCases", Method: http.MethodPost, Path: "/v2/queues/{queue_id}/cases/bulk-delegate",
		Summary: "Deprecated: answers 308 to bulk-reprocess", Deprecated: true, DefaultStatus: http.StatusPermanentRedirect, SkipValidateBody: true, Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *struct {
			QueueCasesPath
			Body struct {
				CaseIDs []string `json:"case_ids" minItems:"1" maxItems:"100" format:"uuid" doc:"Case IDs to delegate (1-100)."`
				AgentID string   `json:"agent_id" format:"uuid" doc:"The agent that should run on the selected cases."`
			}
		}) (*redirectOut, error) {
			return redirect(in.QueueID)
		})
}
