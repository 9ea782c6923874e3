package web

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"docket/files"
	"docket/store"
)

// jobsPerPage is how many Jobs one page of the list shows.
const jobsPerPage = 25

// jobConversation is how many of a Job's latest messages its page shows; the rest are
// in the API (listRunMessages).
const jobConversation = 200

// jobStatuses are the list's filter tabs; "" is every status.
var jobStatuses = []string{"", store.RunRunning, store.RunWaiting, store.RunPending, store.RunCompleted, store.RunFailed, store.RunStopped}

func (s *Server) jobsPage(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx := r.Context()
	p := principal(ctx)
	pd, err := s.pageData(w, r, "Jobs", "jobs")
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	pd.Stream = teamStream(start)
	status := r.URL.Query().Get("status")
	if !validStatus(status) {
		status = ""
	}
	pg := paginate(r, jobsPerPage)
	runs, total, err := s.store.ListRuns(ctx, p.TeamID, store.RunFilter{Status: status, Limit: pg.Limit, Offset: pg.Offset})
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	pg.Total = total
	s.render(w, r, jobsPage(pd, status, runs, pg))
}

func validStatus(s string) bool {
	for _, st := range jobStatuses {
		if s == st {
			return true
		}
	}
	return false
}

// jobView is a Job with what its page shows around the conversation.
type jobView struct {
	Run  store.Run
	Gate *gateView
	// Result is the final answer of a completed Job.
	Result    string
	CaseTitle string
	Messages  []store.Message
	Earlier   int
	LastSeq   int
	CanAct    bool
	// Artifacts are the files the Job wrote (runs/<id>/…).
	Artifacts []store.File
}

func (s *Server) jobView(ctx context.Context, team, id string, canAct bool, withMessages bool) (jobView, error) {
	run, err := s.store.GetRun(ctx, team, id)
	if err != nil {
		return jobView{}, err
	}
	v := jobView{Run: run, CanAct: canAct}
	if run.CaseID != nil {
		if c, err := s.store.GetCase(ctx, team, *run.CaseID); err == nil {
			v.CaseTitle = c.Title
		}
	}
	if run.Status == store.RunWaiting {
		g, err := s.store.OpenGateOf(ctx, run.ID)
		if err != nil {
			return v, err
		}
		if g != nil {
			gv, err := s.gateView(ctx, *g, 0, canAct, "/jobs/"+run.ID)
			if err != nil {
				return v, err
			}
			v.Gate = &gv
		}
	}
	if run.Status == store.RunCompleted {
		last, _, err := s.store.ListMessages(ctx, team, run.ID, 1, 0, true)
		if err != nil {
			return v, err
		}
		if len(last) == 1 && last[0].Role == "assistant" && last[0].Text != nil {
			v.Result = *last[0].Text
		}
	}
	if v.Artifacts, err = s.store.RunArtifacts(ctx, run.ID); err != nil {
		return v, err
	}
	if withMessages {
		ms, total, err := s.store.ListMessages(ctx, team, run.ID, jobConversation, 0, true)
		if err != nil {
			return v, err
		}
		for i, j := 0, len(ms)-1; i < j; i, j = i+1, j-1 {
			ms[i], ms[j] = ms[j], ms[i]
		}
		v.Messages, v.Earlier = ms, total-len(ms)
		if len(ms) > 0 {
			v.LastSeq = ms[len(ms)-1].Seq
		}
	}
	return v, nil
}

func (s *Server) jobPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principal(ctx)
	v, err := s.jobView(ctx, p.TeamID, r.PathValue("run_id"), p.Role.Allows(store.RoleMember), true)
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	pd, err := s.pageData(w, r, jobTitle(v.Run), "jobs")
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	pd.Stream = "/jobs/" + v.Run.ID + "/events?after=" + strconv.Itoa(v.LastSeq)
	s.render(w, r, jobPage(pd, v))
}

// jobPanel is the part of a Job's page that changes with its status: facts, actions,
// the open gate, the result. The page fetches it again on every status event.
func (s *Server) jobPanel(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principal(ctx)
	v, err := s.jobView(ctx, p.TeamID, r.PathValue("run_id"), p.Role.Allows(store.RoleMember), false)
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	s.render(w, r, jobPanel(v))
}

// jobEvents streams a Job's page updates over the run event stream the API serves, as
// HTML: new messages, streamed tokens and status. Reconnecting with Last-Event-ID (the
// browser does) resumes after the last message received.
func (s *Server) jobEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	team := principal(ctx).TeamID
	id := r.PathValue("run_id")
	if _, err := s.store.GetRun(ctx, team, id); err != nil {
		s.uiFail(w, r, err)
		return
	}
	last, err := strconv.Atoi(r.Header.Get("Last-Event-ID"))
	if err != nil {
		last, _ = strconv.Atoi(r.URL.Query().Get("after"))
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	s.streamRun(ctx, w, team, id, last, htmlRunEvents)
}

// htmlRunEvents renders a run's events as the fragments the Job page swaps in.
func htmlRunEvents(ctx context.Context, _ string, v any) ([]byte, error) {
	var buf bytes.Buffer
	var err error
	switch e := v.(type) {
	case store.Message:
		err = liveMessage(e).Render(ctx, &buf)
	case statusEventJSON:
		err = statusBadge(e.Status).Render(ctx, &buf)
	case tokenEventJSON:
		buf.WriteString(html.EscapeString(e.Text))
	}
	return buf.Bytes(), err
}

func (s *Server) stopJob(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("run_id")
	if _, err := s.runs.Stop(ctx, actor(ctx), id); err != nil {
		if msg, ok := actionError(err); ok {
			s.redirect(w, r, "/jobs/"+id, "error", msg)
			return
		}
		s.uiFail(w, r, err)
		return
	}
	s.redirect(w, r, "/jobs/"+id, "ok", "Job stopped.")
}

func (s *Server) postJobMessage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("run_id")
	text := strings.TrimSpace(r.PostFormValue("message"))
	if text == "" {
		s.redirect(w, r, "/jobs/"+id, "error", "Write a message before sending.")
		return
	}
	if _, err := s.runs.PostMessage(ctx, actor(ctx), id, text); err != nil {
		if msg, ok := actionError(err); ok {
			s.redirect(w, r, "/jobs/"+id, "error", msg)
			return
		}
		s.uiFail(w, r, err)
		return
	}
	s.redirect(w, r, "/jobs/"+id, "ok", "Message sent. The Job continues with it.")
}

func jobsURL(status string) string {
	if status == "" {
		return "/jobs"
	}
	return "/jobs?status=" + status
}

func jobsTabLabel(status string) string {
	if status == "" {
		return "All"
	}
	return statusLabel(status)
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[len(id)-8:]
	}
	return id
}

func sendPlaceholder(r store.Run) string {
	if r.Status == store.RunWaiting {
		return "Reply instead of deciding the gate…"
	}
	return "Ask a follow-up; the Job resumes with it…"
}

// messageWho names a message's author in the dashboard's words.
func messageWho(m store.Message) string {
	switch {
	case m.ToolCall != nil:
		return "Tool call"
	case m.ToolResult != nil:
		return "Tool result"
	case m.Role == "user":
		return "Message"
	case m.Role == "assistant":
		return "Assignment"
	}
	return capitalize(m.Role)
}

// prettyText indents a JSON result and leaves anything else as it is.
func prettyText(s string) string {
	if p := prettyJSON(json.RawMessage(s)); p != "" && (strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[")) {
		return p
	}
	return s
}

// clip shortens very long text for display; the API has the whole of it.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "\n… (" + strconv.Itoa(len(s)-n) + " more characters)"
}

// downloadFile sends a signed-in person to a signed download URL of one of their team's
// files (the API's getFileDownloadUrl, without asking for a key).
func (s *Server) downloadFile(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principal(ctx)
	path, err := files.CleanPath("path", r.PathValue("path"))
	if err != nil {
		s.uiError(w, r, http.StatusBadRequest, "Not accepted", err.Error())
		return
	}
	if _, err := s.store.GetFile(ctx, p.TeamID, path); err != nil {
		s.uiFail(w, r, err)
		return
	}
	q, _ := s.signer.Sign(http.MethodGet, signedFilesPrefix+path, p.TeamID, files.DefaultURLTTL, url.Values{"uid": {p.UserID}})
	http.Redirect(w, r, (&url.URL{Path: signedFilesPrefix + path}).EscapedPath()+"?"+q.Encode(), http.StatusSeeOther)
}

// downloadURL is where the dashboard downloads a file.
func downloadURL(f store.File) string {
	return (&url.URL{Path: "/files/download/" + f.Path}).EscapedPath()
}

// artifactName is an artifact's path inside its Job's folder.
func artifactName(f store.File) string {
	if f.RunID != nil {
		return strings.TrimPrefix(f.Path, "runs/"+*f.RunID+"/")
	}
	return f.Path
}

// fileSize says how big a file is, as a person reads it.
func fileSize(n int64) string {
	switch {
	case n < 1<<10:
		return strconv.FormatInt(n, 10) + " B"
	case n < 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	case n < 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	}
	return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GiB"
}
