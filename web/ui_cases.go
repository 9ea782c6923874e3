package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"docket/store"
)

// casesPerPage is how many cases one page of the cases list shows.
const casesPerPage = 50

// maxSelected mirrors the API's limit on case_ids in one bulk call; more than a page of
// cases is selected with "all matching" instead.
const maxSelected = 100

// caseStatuses are the display statuses the cases list filters by, in the order a case
// usually moves through them.
var caseStatuses = []string{"pending", "in_progress", "needs_input", "postponed", "completed", "failed"}

var casePriorities = []string{"high", "medium", "none"}

// casesQuery is the cases list's filter as the person set it (URL or bulk form).
type casesQuery struct {
	Queue, Status, Priority, Label, Q string
}

func readCasesQuery(v url.Values) casesQuery {
	return casesQuery{Queue: v.Get("queue"), Status: v.Get("status"), Priority: v.Get("priority"),
		Label: strings.TrimSpace(v.Get("label")), Q: strings.TrimSpace(v.Get("q"))}
}

// filter is the store filter the query means: the same one searchCases and the bulk
// operations' all_matching build from the API's fields. Values a select cannot send
// are ignored.
func (q casesQuery) filter() store.CaseFilter {
	f := store.CaseFilter{Search: q.Q}
	if slices.Contains(caseStatuses, q.Status) {
		f.DisplayStatuses = []string{q.Status}
	}
	if slices.Contains(casePriorities, q.Priority) {
		f.Priorities = []string{q.Priority}
	}
	if q.Label != "" {
		kv := parseLabel(q.Label)
		f.Labels = map[string][]string{kv.Key: {kv.Value}}
	}
	return f
}

// Filtered reports whether anything narrows the list.
func (q casesQuery) Filtered() bool {
	return q.Status != "" || q.Priority != "" || q.Label != "" || q.Q != ""
}

// casesView is what the cases page shows.
type casesView struct {
	Query  casesQuery
	Queue  store.Queue
	Queues []store.Queue
	Labels []store.Label
	Cases  store.CasePage
	Pg     pagination
	CanAct bool
}

func (s *Server) casesPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	team := principal(ctx).TeamID
	q := readCasesQuery(r.URL.Query())
	if q.Queue == "" {
		qs, _, err := s.store.ListQueues(ctx, team, store.QueueFilter{Limit: 1, SkipCounts: true})
		if err != nil {
			s.uiFail(w, r, err)
			return
		}
		if len(qs) > 0 {
			http.Redirect(w, r, casesURL(qs[0].ID), http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, "/queues", http.StatusSeeOther)
		return
	}
	v := casesView{Query: q, CanAct: principal(ctx).Role.Allows(store.RoleMember)}
	var err error
	if v.Queue, err = s.store.FindQueue(ctx, team, q.Queue); err != nil {
		s.uiFail(w, r, err)
		return
	}
	pd, err := s.pageData(w, r, v.Queue.Name+" · Cases", "queues")
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	if v.Queues, _, err = s.store.ListQueues(ctx, team, store.QueueFilter{Limit: 200, SkipCounts: true}); err != nil {
		s.uiFail(w, r, err)
		return
	}
	if v.Labels, err = s.store.QueueLabelNames(ctx, team, q.Queue, 500); err != nil {
		s.uiFail(w, r, err)
		return
	}
	v.Pg = paginate(r, casesPerPage)
	if v.Cases, err = s.store.ListCases(ctx, team, q.Queue, store.CaseQuery{CaseFilter: q.filter(), Limit: v.Pg.Limit, Offset: v.Pg.Offset}); err != nil {
		s.uiFail(w, r, err)
		return
	}
	v.Pg.Total = v.Cases.Total
	s.render(w, r, casesPage(pd, v))
}

// bulkAction is one of the cases list's actions on many cases: the API operation it is
// (route and audit), the store function both use, and how its outcome reads.
type bulkAction struct {
	verb, op string
	// run performs the action on the selection with the value the form gave it.
	run func(s *Server, ctx context.Context, queue string, sel store.CaseSelection, r *http.Request) (store.BulkResult, error)
	// done says what happened to n cases; skipped why the others were left.
	done    func(r *http.Request, n int) string
	skipped string
	wake    bool
}

var bulkActions = []bulkAction{
	{verb: "bulk-reprocess", op: "bulkReprocessCases", wake: true, skipped: "a run holds them",
		run: func(s *Server, ctx context.Context, queue string, sel store.CaseSelection, _ *http.Request) (store.BulkResult, error) {
			return s.store.ReprocessCases(ctx, actor(ctx), queue, sel, "")
		},
		done: func(_ *http.Request, n int) string {
			return "Reprocessed " + plural(n, "case", "cases") + ": they run again on the live Setup."
		}},
	{verb: "bulk-update-priority", op: "bulkUpdateCasePriority", wake: true, skipped: "already at that priority",
		run: func(s *Server, ctx context.Context, queue string, sel store.CaseSelection, r *http.Request) (store.BulkResult, error) {
			return s.store.SetCasesPriority(ctx, actor(ctx), queue, sel, r.PostFormValue("priority_to"))
		},
		done: func(r *http.Request, n int) string {
			return "Set the priority of " + plural(n, "case", "cases") + " to " + r.PostFormValue("priority_to") + "."
		}},
	{verb: "bulk-update-status", op: "bulkUpdateCaseStatus", wake: true, skipped: "already in that status, or a run holds them",
		run: func(s *Server, ctx context.Context, queue string, sel store.CaseSelection, r *http.Request) (store.BulkResult, error) {
			return s.store.SetCasesStatus(ctx, actor(ctx), queue, sel, r.PostFormValue("status_to"))
		},
		done: func(r *http.Request, n int) string {
			return "Set " + plural(n, "case", "cases") + " to " + caseStatusLabel(r.PostFormValue("status_to")) + "."
		}},
	{verb: "bulk-add-labels", op: "bulkAddCaseLabels", skipped: "they carry it already",
		run: func(s *Server, ctx context.Context, queue string, sel store.CaseSelection, r *http.Request) (store.BulkResult, error) {
			l := strings.TrimSpace(r.PostFormValue("add_label"))
			var kv []store.LabelKV
			if l != "" {
				kv = append(kv, parseLabel(l))
			}
			return s.store.LabelCases(ctx, actor(ctx), queue, sel, kv)
		},
		done: func(r *http.Request, n int) string {
			return "Labelled " + plural(n, "case", "cases") + " " + strings.TrimSpace(r.PostFormValue("add_label")) + "."
		}},
	{verb: "bulk-delete", op: "bulkDeleteCases", skipped: "a run holds them",
		run: func(s *Server, ctx context.Context, queue string, sel store.CaseSelection, _ *http.Request) (store.BulkResult, error) {
			return s.store.DeleteCases(ctx, actor(ctx), queue, sel)
		},
		done: func(_ *http.Request, n int) string { return "Deleted " + plural(n, "case", "cases") + "." }},
}

// bulkCasesPost performs one bulk action on the cases ticked on the page, or on every
// case matching the filter the page showed, through the same store function as the API.
func (s *Server) bulkCasesPost(a bulkAction) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		queue := r.PathValue("queue_id")
		if err := r.ParseForm(); err != nil {
			s.uiError(w, r, http.StatusBadRequest, "Not accepted", "The form could not be read: send it again.")
			return
		}
		back := localPath(r.PostFormValue("back"), casesURL(queue))
		var sel store.CaseSelection
		if r.PostFormValue("all_matching") == "1" {
			sel = store.CaseSelection{AllMatching: true, Filter: readCasesQuery(r.PostForm).filter()}
		} else {
			sel.IDs = r.PostForm["case_id"]
			switch {
			case len(sel.IDs) == 0:
				s.redirect(w, r, back, "error", "Select the cases first: tick them in the list, or tick “all matching” to act on every case the filter finds.")
				return
			case len(sel.IDs) > maxSelected:
				s.redirect(w, r, back, "error", "At most "+strconv.Itoa(maxSelected)+" cases can be ticked at once: use “all matching” for more.")
				return
			}
		}
		res, err := a.run(s, ctx, queue, sel, r)
		if err != nil {
			s.actionFailed(w, r, back, err)
			return
		}
		if a.wake {
			s.wakeDispatcher()
		}
		msg := a.done(r, res.Changed)
		if res.Skipped > 0 {
			msg += " " + plural(res.Skipped, "case was left as it was", "cases were left as they were") + ": " + a.skipped + "."
		}
		s.redirect(w, r, back, "ok", msg)
	}
}

// caseView is what a case's page shows.
type caseView struct {
	Case   store.Case
	Queue  store.Queue
	Events []store.CaseEvent
	Runs   []store.CaseRun
	CanAct bool
}

func (s *Server) casePage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principal(ctx)
	c, err := s.store.GetCase(ctx, p.TeamID, r.PathValue("case_id"))
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	v := caseView{Case: c, CanAct: p.Role.Allows(store.RoleMember)}
	if v.Queue, err = s.store.GetQueue(ctx, p.TeamID, c.QueueID); err != nil {
		s.uiFail(w, r, err)
		return
	}
	if v.Events, err = s.store.CaseEvents(ctx, c.ID); err != nil {
		s.uiFail(w, r, err)
		return
	}
	slices.Reverse(v.Events)
	if v.Runs, err = s.store.CaseRuns(ctx, p.TeamID, c.ID, 50); err != nil {
		s.uiFail(w, r, err)
		return
	}
	pd, err := s.pageData(w, r, c.Title, "queues")
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	s.render(w, r, casePage(pd, v))
}

func (s *Server) deleteCasePost(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("case_id")
	c, err := s.store.GetCase(ctx, principal(ctx).TeamID, id)
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	if err := s.store.DeleteCase(ctx, actor(ctx), id); err != nil {
		s.actionFailed(w, r, "/cases/"+id, err)
		return
	}
	s.redirect(w, r, casesURL(c.QueueID), "ok", "Deleted the case “"+c.Title+"”.")
}

// parseLabel reads a label written key:value, or a value alone for a label without key.
func parseLabel(l string) store.LabelKV {
	key, value, found := strings.Cut(l, ":")
	if !found {
		return store.LabelKV{Value: l}
	}
	return store.LabelKV{Key: key, Value: value}
}

// labelText writes a label the way the filter and the API's label parameter read it.
func labelText(l store.Label) string {
	if l.Key == "" {
		return l.Value
	}
	return l.Key + ":" + l.Value
}

// hueClass buckets a label's colour into one of twelve classes: the page's security
// policy allows no inline styles.
func hueClass(hue int) string {
	return "hue-" + strconv.Itoa(((hue%360+360)%360+15)/30%12)
}

// caseStatusLabel names a case's display status the way the dashboard speaks.
func caseStatusLabel(s string) string {
	switch s {
	case "in_progress":
		return "In progress"
	case "needs_input":
		return "Needs input"
	case "":
		return "Any status"
	}
	return capitalize(s)
}

func priorityLabel(p string) string {
	switch p {
	case "none":
		return "No priority"
	case "":
		return "Any priority"
	}
	return capitalize(p)
}

// caseEventText says what a case event was, in words.
func caseEventText(e store.CaseEvent) string {
	var d map[string]any
	if len(e.Detail) > 0 {
		json.Unmarshal(e.Detail, &d)
	}
	switch e.Type {
	case "created":
		return "Created"
	case "reprocess":
		return "Reprocessed: back to pending"
	case "claimed":
		return "Picked up by a Job"
	case "retry_scheduled":
		return "Retry scheduled"
	case "priority_changed":
		return "Priority " + str(d["from_priority"]) + " → " + str(d["to_priority"])
	case "labels_assigned", "labels_unlinked":
		verb := "Labelled "
		if e.Type == "labels_unlinked" {
			verb = "Label removed: "
		}
		var names []string
		if ls, ok := d["labels"].([]any); ok {
			for _, l := range ls {
				if m, ok := l.(map[string]any); ok {
					names = append(names, labelText(store.Label{Key: str(m["key"]), Value: str(m["value"])}))
				}
			}
		}
		return verb + strings.Join(names, ", ")
	}
	return capitalize(strings.ReplaceAll(e.Type, "_", " "))
}

// caseEventWho says who or what made a case event.
func caseEventWho(e store.CaseEvent) string {
	switch {
	case e.UserEmail != nil:
		return *e.UserEmail + " via " + e.Channel
	case e.AgentName != nil:
		return *e.AgentName
	case e.APIKeyID != nil:
		return "API key " + shortID(*e.APIKeyID)
	}
	return e.Channel
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// caseData shows a case's data: indented when it is JSON, as written otherwise.
func caseData(d string) string {
	return clip(prettyText(strings.TrimSpace(d)), 20000)
}

// heldOrDecided names the run a case points at: the one working on it, or the one that
// decided it.
func heldOrDecided(c store.Case) string {
	if c.Status == "pending" {
		return "Held by"
	}
	return "Decided by"
}

func casesSubtitle(v casesView) string {
	if v.Query.Filtered() {
		return plural(v.Cases.Total, "case matches", "cases match") + " the filter"
	}
	return plural(v.Cases.Total, "case", "cases") + ", newest first"
}
