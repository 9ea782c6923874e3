package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"docket/store"
)

// QueueCasesPath names the queue whose cases an operation addresses. Queues are
// addressed without their team; another team's queue is 404.
type QueueCasesPath struct {
	QueueID string `path:"queue_id" format:"uuid" doc:"The queue's unique identifier"`
}

// CaseIDPath names a case, addressed without its team.
type CaseIDPath struct {
	CaseID string `path:"case_id" format:"uuid" doc:"The case's unique identifier"`
}

type caseLabelJSON struct {
	ID       string `json:"id" format:"uuid"`
	Key      string `json:"key"`
	Value    string `json:"value" minLength:"1"`
	ColorHue int    `json:"color_hue" minimum:"0" maximum:"360"`
}

type severityCountsJSON struct {
	Critical int `json:"critical"`
	Medium   int `json:"medium"`
	Low      int `json:"low"`
}

// evalSummaryJSON is the reference's evaluation summary; docket runs no evaluations.
type evalSummaryJSON struct {
	_              struct{}            `nullable:"true"`
	Passed         float64             `json:"passed"`
	Total          float64             `json:"total"`
	FinalComment   string              `json:"final_comment,omitempty"`
	Status         string              `json:"status" enum:"ready,unavailable,in_progress"`
	SeverityCounts *severityCountsJSON `json:"severityCounts,omitempty"`
}

// noEvaluation is what docket reports where the reference wants an evaluation.
var noEvaluation = evalSummaryJSON{Status: "unavailable"}

type snippetJSON struct {
	Before string `json:"before"`
	Match  string `json:"match"`
	After  string `json:"after"`
}

// caseJSON is a case as the reference's case operations return it, plus docket's fields.
type caseJSON struct {
	ID                             string           `json:"id" format:"uuid"`
	QueueID                        string           `json:"queue_id" format:"uuid"`
	Title                          string           `json:"title"`
	Data                           string           `json:"data"`
	Status                         string           `json:"status" enum:"pending,completed,failed"`
	Priority                       string           `json:"priority" enum:"none,medium,high"`
	DisplayStatus                  string           `json:"display_status" enum:"pending,in_progress,needs_input,postponed,completed,failed"`
	ClaimedAt                      *Timestamp       `json:"claimed_at" nullable:"true"`
	ClaimedByRunID                 *string          `json:"claimed_by_run_id" nullable:"true"`
	CompletedAt                    *Timestamp       `json:"completed_at" nullable:"true"`
	PostponedTo                    *Timestamp       `json:"postponed_to" nullable:"true"`
	CreatedAt                      Timestamp        `json:"created_at"`
	UpdatedAt                      Timestamp        `json:"updated_at"`
	CreatedByUserID                *string          `json:"created_by_user_id" nullable:"true"`
	CreatedByUserName              *string          `json:"created_by_user_name" nullable:"true"`
	CreatedByUserEmail             *string          `json:"created_by_user_email" nullable:"true"`
	AgentRunStatus                 *string          `json:"agent_run_status" nullable:"true" doc:"The status of the run that holds the case."`
	AgentRunUserID                 *string          `json:"agent_run_user_id" nullable:"true"`
	PendingHumanRequestID          *string          `json:"pending_human_request_id" nullable:"true"`
	PendingApprovalBatchID         *string          `json:"pending_approval_batch_id" nullable:"true" doc:"Always null: docket has no approval batches."`
	PendingApprovalAssigneeUserIDs []string         `json:"pending_approval_assignee_user_ids" doc:"Always empty: docket has no approval batches."`
	ApprovalApprovedCount          int              `json:"approval_approved_count" minimum:"0"`
	ApprovalRejectedCount          int              `json:"approval_rejected_count" minimum:"0"`
	EvalSummary                    *evalSummaryJSON `json:"eval_summary" doc:"Always null: docket runs no evaluations."`
	SearchMatchDataSnippet         *snippetJSON     `json:"search_match_data_snippet,omitempty" doc:"When searching: the words of data around the first match."`
	Labels                         []caseLabelJSON  `json:"labels"`
	Attempt                        int              `json:"attempt" doc:"docket addition: how many runs have taken the case since it was created or reset."`
	RunAfter                       Timestamp        `json:"run_after" doc:"docket addition: the case is not dispatched before this time (retry backoff)."`
	LastError                      *string          `json:"last_error" nullable:"true" doc:"docket addition: why the last attempt failed."`
	Result                         *string          `json:"result" nullable:"true" doc:"docket addition: what the run that completed the case reported."`
	SourceFile                     *string          `json:"source_file" nullable:"true" doc:"docket addition: the dropped file the case came from."`
	ClaimedByAgentID               *string          `json:"claimed_by_agent_id" nullable:"true" doc:"docket addition: the Assignment whose run holds (or last held) the case."`
}

func caseOut(c store.Case) caseJSON {
	out := caseJSON{ID: c.ID, QueueID: c.QueueID, Title: c.Title, Data: c.Data, Status: c.Status, Priority: c.Priority,
		DisplayStatus: c.DisplayStatus, ClaimedAt: tsPtr(c.ClaimedAt), ClaimedByRunID: c.ClaimedByRunID, CompletedAt: tsPtr(c.CompletedAt),
		PostponedTo: tsPtr(c.PostponedTo), CreatedAt: ts(c.CreatedAt), UpdatedAt: ts(c.UpdatedAt), AgentRunStatus: c.RunStatus,
		AgentRunUserID: c.RunUserID, PendingHumanRequestID: c.PendingGateID, PendingApprovalAssigneeUserIDs: []string{},
		Labels: make([]caseLabelJSON, 0, len(c.Labels)), Attempt: c.Attempt, RunAfter: ts(c.RunAfter), LastError: c.LastError,
		Result: c.Result, SourceFile: c.SourceFile, ClaimedByAgentID: c.ClaimedByAgentID}
	if u := c.CreatedBy; u != nil {
		out.CreatedByUserID, out.CreatedByUserName, out.CreatedByUserEmail = &u.ID, u.Name, &u.Email
	}
	for _, l := range c.Labels {
		out.Labels = append(out.Labels, caseLabelJSON{ID: l.ID, Key: l.Key, Value: l.Value, ColorHue: l.ColorHue})
	}
	return out
}

type newCaseLabelBody struct {
	Key   string `json:"key,omitempty" doc:"Label key (omit for a simple tag)."`
	Value string `json:"value" minLength:"1" doc:"Label value (required)."`
}

type newCaseBody struct {
	Title    string             `json:"title" minLength:"1" maxLength:"500" doc:"Short title for the case (max 500 characters). Put long context in data."`
	Data     string             `json:"data,omitempty" doc:"Additional data for the case. Free-form text or JSON; the Assignment receives it with the case."`
	Labels   []newCaseLabelBody `json:"labels,omitempty" maxItems:"50" doc:"Labels to assign at creation; missing ones are created on the queue."`
	Priority string             `json:"priority,omitempty" enum:"none,medium,high" doc:"none (default), medium or high: higher priority cases are claimed first."`
}

func (b newCaseBody) newCase() store.NewCase {
	nc := store.NewCase{Title: b.Title, Data: b.Data, Priority: b.Priority}
	for _, l := range b.Labels {
		nc.Labels = append(nc.Labels, store.LabelKV{Key: l.Key, Value: l.Value})
	}
	return nc
}

type createCasesIn struct {
	QueueCasesPath
	Body struct {
		Case  *newCaseBody  `json:"case,omitempty" doc:"One case; or send cases."`
		Cases []newCaseBody `json:"cases,omitempty" minItems:"1" maxItems:"100" doc:"1-100 cases, created all or none; or send case."`
	}
}

type createCasesOut struct {
	AddedCases []caseJSON `json:"added_cases"`
}

// caseFiltersBody is the reference's case filter object (searchCases and bulk operations).
type caseFiltersBody struct {
	Status        []string            `json:"status,omitempty" enum:"pending,claimed,completed,failed,needs_input,postponed,in_progress" doc:"Any of these display statuses; claimed (or in_progress) is a case a run holds."`
	Priority      []string            `json:"priority,omitempty" enum:"none,medium,high"`
	CreatedAtFrom string              `json:"created_at_from,omitempty" doc:"Cases created at or after this RFC 3339 time (or date)."`
	UpdatedAtFrom string              `json:"updated_at_from,omitempty" doc:"Cases updated at or after this RFC 3339 time (or date)."`
	Labels        map[string][]string `json:"labels,omitempty" doc:"Label key to accepted values: a case needs, for every key, a label with that key and one of the values."`
}

// filter turns the body into a store filter; field prefixes the names in errors.
func (f *caseFiltersBody) filter(field, search string) (store.CaseFilter, error) {
	cf := store.CaseFilter{Search: search}
	if f == nil {
		return cf, nil
	}
	cf.DisplayStatuses, cf.Priorities, cf.Labels = f.Status, f.Priority, f.Labels
	var err error
	if cf.CreatedFrom, err = parseFrom(field+"created_at_from", f.CreatedAtFrom); err != nil {
		return cf, err
	}
	cf.UpdatedFrom, err = parseFrom(field+"updated_at_from", f.UpdatedAtFrom)
	return cf, err
}

// parseFrom reads a lower time bound: RFC 3339, or a date meaning its UTC midnight.
func parseFrom(field, v string) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return &t, nil
		}
	}
	return nil, badRequest("%s %q: want an RFC 3339 time such as 2026-01-31T09:00:00Z, or a date such as 2026-01-31", field, v)
}

// commaList splits a comma-separated query parameter and checks every value.
func commaList(field, v string, allowed ...string) ([]string, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allowed, s) {
			return nil, badRequest("%s %q: want a comma-separated list of %s", field, s, strings.Join(allowed, ", "))
		}
		out = append(out, s)
	}
	return out, nil
}

var statusFilterValues = []string{"pending", "claimed", "in_progress", "completed", "failed", "needs_input", "postponed"}

type listCasesIn struct {
	QueueCasesPath
	Limit         int      `query:"limit" default:"20" minimum:"1" maximum:"100" doc:"Number of cases per page (1-100, default 20)."`
	Offset        int      `query:"offset" minimum:"0" doc:"Zero-based offset for pagination."`
	Status        string   `query:"status" doc:"Comma-separated statuses: pending, claimed, completed, failed, needs_input, postponed (docket also accepts in_progress for claimed)."`
	Priority      string   `query:"priority" doc:"Comma-separated priorities: none, medium, high."`
	Search        string   `query:"search" maxLength:"1000" doc:"Full-text search across title and data: every word must occur; end a word with * to match it as a prefix."`
	CreatedAtFrom string   `query:"created_at_from" doc:"Only cases created at or after this RFC 3339 time."`
	UpdatedAtFrom string   `query:"updated_at_from" doc:"Only cases updated at or after this RFC 3339 time."`
	SortBy        string   `query:"sort_by" default:"created_at" enum:"created_at,updated_at,postponed_to"`
	SortOrder     string   `query:"sort_order" default:"desc" enum:"asc,desc"`
	DisplayStatus string   `query:"display_status" doc:"docket addition: comma-separated display statuses (pending, in_progress, needs_input, postponed, completed, failed); use it or status, not both."`
	Label         []string `query:"label,explode" doc:"docket addition: key:value, or a bare value for a label without key; repeat to require several keys, same key twice accepts either value."`
}

type casesPageOut struct {
	Cases  []caseJSON `json:"cases"`
	Total  int        `json:"total"`
	Limit  int        `json:"limit"`
	Offset int        `json:"offset"`
}

type searchCasesIn struct {
	QueueCasesPath
	Body struct {
		Filters   *caseFiltersBody `json:"filters,omitempty"`
		Limit     int              `json:"limit,omitempty" default:"25" minimum:"1" maximum:"100"`
		Offset    int              `json:"offset,omitempty" minimum:"0"`
		SortBy    string           `json:"sort_by,omitempty" default:"created_at" enum:"created_at,updated_at,postponed_to"`
		SortOrder string           `json:"sort_order,omitempty" default:"desc" enum:"asc,desc"`
		Search    string           `json:"search,omitempty" maxLength:"1000" doc:"Full-text search across title and data: every word must occur; end a word with * to match it as a prefix."`
	}
}

type caseEventJSON struct {
	ID                string         `json:"id" format:"uuid"`
	CaseQueueItemID   string         `json:"case_queue_item_id" format:"uuid" doc:"The case's id."`
	HumanRequestID    *string        `json:"human_request_id" nullable:"true"`
	Type              string         `json:"type" doc:"created, reprocess, status_changed, priority_changed, or an event of the case's runs."`
	Reason            *string        `json:"reason" nullable:"true"`
	CreatedAt         Timestamp      `json:"created_at"`
	AgentID           *string        `json:"agent_id" nullable:"true"`
	AgentName         *string        `json:"agent_name" nullable:"true"`
	UserID            *string        `json:"user_id" nullable:"true"`
	UserName          *string        `json:"user_name" nullable:"true"`
	UserEmail         *string        `json:"user_email" nullable:"true"`
	HumanRequestTitle *string        `json:"human_request_title" nullable:"true"`
	FromStatus        *string        `json:"from_status" nullable:"true" doc:"docket addition: the case's display status before."`
	ToStatus          *string        `json:"to_status" nullable:"true" doc:"docket addition: the case's status after."`
	AgentRunID        *string        `json:"agent_run_id" nullable:"true" format:"uuid" doc:"The run that made the change, if one did."`
	APIKeyID          *string        `json:"api_key_id" nullable:"true" doc:"docket addition: the API key that made the change."`
	Channel           string         `json:"channel" doc:"docket addition: api, cli, mcp, ui or system."`
	Detail            map[string]any `json:"detail,omitempty" doc:"docket addition: what else changed."`
}

type getCaseOut struct {
	Case            caseJSON        `json:"case"`
	Events          []caseEventJSON `json:"events"`
	ApprovalBatches []struct{}      `json:"approvalBatches" maxItems:"0" doc:"Always empty: docket has no approval batches."`
}

type caseRunJSON struct {
	ID                       string          `json:"id" format:"uuid"`
	CaseQueueItemID          string          `json:"case_queue_item_id" format:"uuid" doc:"The case's id."`
	AgentID                  string          `json:"agent_id" format:"uuid"`
	AgentName                string          `json:"agent_name"`
	Status                   string          `json:"status" enum:"not_started,pending,starting,running,waiting,completed,failed,interrupted" doc:"A stopped run is interrupted."`
	Source                   *string         `json:"source" nullable:"true"`
	CreatedAt                Timestamp       `json:"created_at"`
	StartedAt                *Timestamp      `json:"started_at" nullable:"true"`
	CompletedAt              *Timestamp      `json:"completed_at" nullable:"true"`
	ClaimedAt                Timestamp       `json:"claimed_at" doc:"When the run took the case (it was created for it)."`
	HasPendingHumanRequest   bool            `json:"has_pending_human_request"`
	PendingHumanRequestTitle *string         `json:"pending_human_request_title" nullable:"true"`
	Evaluation               evalSummaryJSON `json:"evaluation" doc:"Always unavailable: docket runs no evaluations."`
	UserID                   *string         `json:"user_id" nullable:"true"`
	UserName                 *string         `json:"user_name" nullable:"true"`
	UserEmail                *string         `json:"user_email" nullable:"true"`
	Title                    string          `json:"title" doc:"docket addition."`
	RunNumber                int             `json:"run_number" doc:"docket addition."`
	Error                    *string         `json:"error" nullable:"true" doc:"docket addition: why the run failed."`
}

func caseRunOut(caseID string, r store.CaseRun) caseRunJSON {
	status := r.Status
	if status == store.RunStopped {
		status = "interrupted"
	}
	src := r.Source
	return caseRunJSON{ID: r.ID, CaseQueueItemID: caseID, AgentID: r.AgentID, AgentName: r.AgentName, Status: status, Source: &src,
		CreatedAt: ts(r.CreatedAt), StartedAt: tsPtr(r.StartedAt), CompletedAt: tsPtr(r.CompletedAt), ClaimedAt: ts(r.CreatedAt),
		HasPendingHumanRequest: r.PendingGateTitle != nil, PendingHumanRequestTitle: r.PendingGateTitle, Evaluation: noEvaluation,
		UserID: r.UserID, UserName: r.UserName, UserEmail: r.UserEmail, Title: r.Title, RunNumber: r.RunNumber, Error: r.Error}
}

// casesOut renders a page of cases with their search snippets.
func casesOut(p store.CasePage, limit, offset int) *body[casesPageOut] {
	out := &body[casesPageOut]{Body: casesPageOut{Cases: make([]caseJSON, 0, len(p.Cases)), Total: p.Total, Limit: limit, Offset: offset}}
	for _, c := range p.Cases {
		cj := caseOut(c)
		if sn, ok := p.Snippets[c.ID]; ok {
			cj.SearchMatchDataSnippet = &snippetJSON{Before: sn.Before, Match: sn.Match, After: sn.After}
		}
		out.Body.Cases = append(out.Body.Cases, cj)
	}
	return out
}

// singleCaseField renames store errors about cases[0] to case, for a request that sent
// one case object.
func singleCaseField(err error) error {
	var se *store.Error
	if errors.As(err, &se) && errors.Is(se.Kind, store.ErrInvalid) {
		return badRequest("%s", strings.ReplaceAll(se.Msg, "cases[0]", "case"))
	}
	return err
}

func (s *Server) registerCases() {
	tags := []string{"Cases"}
	huma.Register(s.api, s.op(huma.Operation{OperationID: "createCases", Method: http.MethodPost, Path: "/v2/queues/{queue_id}/cases",
		Summary: "Create one case or a batch of 1-100, all or none", DefaultStatus: http.StatusCreated, Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *createCasesIn) (*body[createCasesOut], error) {
			b := in.Body
			var items []newCaseBody
			switch {
			case b.Case != nil && b.Cases != nil:
				return nil, badRequest("case and cases: send one case object or a cases array, not both")
			case b.Case != nil:
				items = []newCaseBody{*b.Case}
			case len(b.Cases) > 0:
				items = b.Cases
			default:
				return nil, badRequest(`case or cases is required: send {"case":{"title":"…"}} or {"cases":[…]} with 1-100 cases`)
			}
			ncs := make([]store.NewCase, len(items))
			for i, it := range items {
				ncs[i] = it.newCase()
			}
			cs, err := s.store.CreateCases(ctx, actor(ctx), in.QueueID, ncs)
			if err != nil {
				if b.Case != nil {
					err = singleCaseField(err)
				}
				return nil, fail(ctx, err)
			}
			s.wakeDispatcher()
			out := &body[createCasesOut]{Body: createCasesOut{AddedCases: make([]caseJSON, 0, len(cs))}}
			for _, c := range cs {
				out.Body.AddedCases = append(out.Body.AddedCases, caseOut(c))
			}
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "listCases", Method: http.MethodGet, Path: "/v2/queues/{queue_id}/cases",
		Summary: "List a queue's cases", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *listCasesIn) (*body[casesPageOut], error) {
			q, err := in.query()
			if err != nil {
				return nil, err
			}
			p, err := s.store.ListCases(ctx, principal(ctx).TeamID, in.QueueID, q)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return casesOut(p, in.Limit, in.Offset), nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "searchCases", Method: http.MethodPost, Path: "/v2/queues/{queue_id}/cases/search",
		Summary: "Search a queue's cases: full text with filters", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *searchCasesIn) (*body[casesPageOut], error) {
			b := in.Body
			f, err := b.Filters.filter("filters.", b.Search)
			if err != nil {
				return nil, err
			}
			q := store.CaseQuery{CaseFilter: f, SortBy: b.SortBy, Asc: b.SortOrder == "asc", Limit: b.Limit, Offset: b.Offset}
			p, err := s.store.ListCases(ctx, principal(ctx).TeamID, in.QueueID, q)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return casesOut(p, b.Limit, b.Offset), nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "getCase", Method: http.MethodGet, Path: "/v2/cases/{case_id}",
		Summary: "Get a case with its event history", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *CaseIDPath) (*body[getCaseOut], error) {
			team := principal(ctx).TeamID
			c, err := s.store.GetCase(ctx, team, in.CaseID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			events, err := s.store.CaseEvents(ctx, c.ID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			var gates []string
			for _, e := range events {
				if e.HumanRequestID != nil {
					gates = append(gates, *e.HumanRequestID)
				}
			}
			titles, err := s.store.HumanRequestTitles(ctx, team, gates)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[getCaseOut]{Body: getCaseOut{Case: caseOut(c), Events: make([]caseEventJSON, 0, len(events)), ApprovalBatches: []struct{}{}}}
			for _, e := range events {
				ej := caseEventJSON{ID: e.ID, CaseQueueItemID: e.CaseID, HumanRequestID: e.HumanRequestID, Type: e.Type, Reason: e.Reason,
					CreatedAt: ts(e.CreatedAt), AgentID: e.AgentID, AgentName: e.AgentName, UserID: e.UserID, UserName: e.UserName,
					UserEmail: e.UserEmail, FromStatus: e.FromStatus, ToStatus: e.ToStatus, AgentRunID: e.RunID, APIKeyID: e.APIKeyID, Channel: e.Channel}
				if e.HumanRequestID != nil {
					if t, ok := titles[*e.HumanRequestID]; ok {
						ej.HumanRequestTitle = &t
					}
				}
				if len(e.Detail) > 0 {
					json.Unmarshal(e.Detail, &ej.Detail)
				}
				out.Body.Events = append(out.Body.Events, ej)
			}
			return out, nil
		})

	type deleteCaseOut struct {
		Success           bool     `json:"success"`
		InterruptedRunIDs []string `json:"interruptedRunIds" doc:"Always empty: docket refuses (409) to delete a case a run holds instead of interrupting the run."`
	}
	huma.Register(s.api, s.op(huma.Operation{OperationID: "deleteCase", Method: http.MethodDelete, Path: "/v2/cases/{case_id}",
		Summary: "Delete a case (409 while a run holds it)", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *CaseIDPath) (*body[deleteCaseOut], error) {
			if err := s.store.DeleteCase(ctx, actor(ctx), in.CaseID); err != nil {
				return nil, fail(ctx, err)
			}
			return &body[deleteCaseOut]{Body: deleteCaseOut{Success: true, InterruptedRunIDs: []string{}}}, nil
		})

	type clearCasesOut struct {
		Success           bool     `json:"success"`
		DeletedCount      int      `json:"deletedCount"`
		InterruptedRunIDs []string `json:"interruptedRunIds" doc:"Always empty: docket leaves cases a run holds in place (see skippedCount)."`
		SkippedCount      int      `json:"skippedCount" doc:"docket addition: cases left because a run holds them."`
	}
	huma.Register(s.api, s.op(huma.Operation{OperationID: "clearQueueCases", Method: http.MethodDelete, Path: "/v2/queues/{queue_id}/cases",
		Summary: "Delete every case of a queue that no run holds", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *struct {
			QueueCasesPath
			Confirm string `query:"confirm" doc:"docket addition, required: the queue's id, to confirm deleting all its cases."`
		}) (*body[clearCasesOut], error) {
			if in.Confirm != in.QueueID {
				return nil, badRequest("confirm: deleting every case of a queue needs ?confirm=%s (the queue's id)", in.QueueID)
			}
			deleted, skipped, err := s.store.ClearQueueCases(ctx, actor(ctx), in.QueueID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[clearCasesOut]{Body: clearCasesOut{Success: true, DeletedCount: deleted, InterruptedRunIDs: []string{}, SkippedCount: skipped}}, nil
		})

	type caseRunsOut struct {
		Runs []caseRunJSON `json:"runs"`
	}
	huma.Register(s.api, s.op(huma.Operation{OperationID: "listCaseRuns", Method: http.MethodGet, Path: "/v2/cases/{case_id}/runs",
		Summary: "List the runs that worked on a case, newest first (at most 50)", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *CaseIDPath) (*body[caseRunsOut], error) {
			runs, err := s.store.CaseRuns(ctx, principal(ctx).TeamID, in.CaseID, 50)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[caseRunsOut]{Body: caseRunsOut{Runs: make([]caseRunJSON, 0, len(runs))}}
			for _, r := range runs {
				out.Body.Runs = append(out.Body.Runs, caseRunOut(in.CaseID, r))
			}
			return out, nil
		})

	type recentMessagesOut struct {
		Messages []messageJSON `json:"messages"`
	}
	huma.Register(s.api, s.op(huma.Operation{OperationID: "listCaseRunRecentMessages", Method: http.MethodGet,
		Path: "/v2/cases/{case_id}/runs/{run_id}/recent-messages", Summary: "The latest assistant texts and tool calls of a case's run, newest last",
		Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *struct {
			CaseIDPath
			RunPath
			Limit int `query:"limit" default:"3" minimum:"1" maximum:"10" doc:"How many messages (1-10, default 3)."`
		}) (*body[recentMessagesOut], error) {
			ms, err := s.store.RecentCaseRunMessages(ctx, principal(ctx).TeamID, in.CaseID, in.RunID, in.Limit)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[recentMessagesOut]{Body: recentMessagesOut{Messages: make([]messageJSON, 0, len(ms))}}
			for _, m := range ms {
				out.Body.Messages = append(out.Body.Messages, messageOut(m))
			}
			return out, nil
		})

	s.registerCasesBulk()
}

// query validates listCases' parameters into a store query.
func (in *listCasesIn) query() (store.CaseQuery, error) {
	q := store.CaseQuery{SortBy: in.SortBy, Asc: in.SortOrder == "asc", Limit: in.Limit, Offset: in.Offset}
	q.Search = in.Search
	var err error
	if in.Status != "" && in.DisplayStatus != "" {
		return q, badRequest("status and display_status: filter by one of them, not both")
	}
	if q.DisplayStatuses, err = commaList("status", in.Status, statusFilterValues...); err != nil {
		return q, err
	}
	if in.DisplayStatus != "" {
		if q.DisplayStatuses, err = commaList("display_status", in.DisplayStatus, "pending", "in_progress", "needs_input", "postponed", "completed", "failed"); err != nil {
			return q, err
		}
	}
	if q.Priorities, err = commaList("priority", in.Priority, "none", "medium", "high"); err != nil {
		return q, err
	}
	if q.CreatedFrom, err = parseFrom("created_at_from", in.CreatedAtFrom); err != nil {
		return q, err
	}
	if q.UpdatedFrom, err = parseFrom("updated_at_from", in.UpdatedAtFrom); err != nil {
		return q, err
	}
	q.Labels, err = labelFilter(in.Label)
	return q, err
}

// labelFilter reads label filters written key:value, or a bare value for a label without
// key (listCases' label parameter, the dashboard's label field): several keys must all
// match, the same key twice accepts either value.
func labelFilter(values []string) (map[string][]string, error) {
	var out map[string][]string
	for _, l := range values {
		if l == "" {
			return nil, badRequest("label: want key:value, or a bare value for a label without key")
		}
		kv := parseLabel(l)
		if out == nil {
			out = map[string][]string{}
		}
		out[kv.Key] = append(out[kv.Key], kv.Value)
	}
	return out, nil
}
