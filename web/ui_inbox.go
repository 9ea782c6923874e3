package web

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"docket/store"
)

// gateView is a gate with the context a person needs to decide it: the Job and its
// Assignment, the case, the exact tool call it guards and the conversation so far.
type gateView struct {
	Gate      store.Gate
	Run       store.Run
	CaseTitle string
	// Tool and Args are the call the gate guards (Args as indented JSON).
	Tool string
	Args string
	// Note is extra detail the Assignment gave with its request.
	Note      string
	Questions []questionJSON
	// Conversation is the end of the Job's conversation; Earlier counts what is left out.
	Conversation []store.Message
	Earlier      int
	CanRespond   bool
	// Next is where the respond form returns to.
	Next string
}

// inboxConversation is how many of the latest messages an inbox card shows.
const inboxConversation = 6

// gateView gathers a gate's context; conversation is how many of the latest messages to
// include.
func (s *Server) gateView(ctx context.Context, g store.Gate, conversation int, canRespond bool, next string) (gateView, error) {
	v := gateView{Gate: g, CanRespond: canRespond, Next: next}
	run, err := s.store.GetRun(ctx, g.TeamID, g.RunID)
	if err != nil {
		return v, err
	}
	v.Run = run
	if run.CaseID != nil {
		if c, err := s.store.GetCase(ctx, g.TeamID, *run.CaseID); err == nil {
			v.CaseTitle = c.Title
		}
	}
	var det struct {
		Tool      string         `json:"tool"`
		Arguments map[string]any `json:"arguments"`
		Details   string         `json:"details"`
	}
	if len(g.Details) > 0 && json.Unmarshal(g.Details, &det) == nil {
		v.Tool, v.Note = det.Tool, det.Details
		if det.Arguments != nil {
			v.Args = showArgs(det.Arguments)
		}
	}
	if len(g.Questions) > 0 {
		json.Unmarshal(g.Questions, &v.Questions)
	}
	if conversation > 0 {
		ms, total, err := s.store.ListMessages(ctx, g.TeamID, g.RunID, conversation, 0, true)
		if err != nil {
			return v, err
		}
		slices.Reverse(ms)
		v.Conversation, v.Earlier = ms, total-len(ms)
	}
	return v, nil
}

// inboxPerPage is how many gates one inbox page shows.
const inboxPerPage = 20

func (s *Server) inboxPage(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx := r.Context()
	p := principal(ctx)
	pd, err := s.pageData(w, r, "Inbox", "inbox")
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	pd.Stream = teamStream(start)
	pg := paginate(r, inboxPerPage)
	gates, total, err := s.store.ListGates(ctx, p.TeamID, store.GateFilter{Status: "open", Limit: pg.Limit, Offset: pg.Offset})
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	pg.Total = total
	views := make([]gateView, 0, len(gates))
	for _, g := range gates {
		v, err := s.gateView(ctx, g, inboxConversation, pd.Can(store.RoleMember), pd.Path)
		if err != nil {
			s.uiFail(w, r, err)
			return
		}
		views = append(views, v)
	}
	s.render(w, r, inboxPage(pd, views, pg))
}

// gatePage shows one gate, open or decided, with the Job's whole conversation.
func (s *Server) gatePage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principal(ctx)
	g, err := s.store.GateByID(ctx, p.TeamID, r.PathValue("gate_id"))
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	pd, err := s.pageData(w, r, g.Title, "inbox")
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	v, err := s.gateView(ctx, g, jobConversation, pd.Can(store.RoleMember), pd.Path)
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	s.render(w, r, gatePage(pd, v))
}

// respondGate approves, denies or answers a gate through the engine, exactly as the
// API's respondToHumanRequest does, and returns to the page it came from.
func (s *Server) respondGate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principal(ctx)
	if err := r.ParseForm(); err != nil {
		s.uiError(w, r, http.StatusBadRequest, "Not accepted", "The form could not be read: send it again.")
		return
	}
	next := localPath(r.PostForm.Get("next"), "/inbox")
	g, err := s.store.GateByID(ctx, p.TeamID, r.PathValue("gate_id"))
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	resp := store.GateResponse{Reason: strings.TrimSpace(r.PostForm.Get("reason"))}
	var done string
	switch r.PostForm.Get("decision") {
	case "approve":
		resp.Approved = new(true)
		done = "Approved"
	case "deny":
		resp.Approved = new(false)
		done = "Denied"
	case "answer":
		var qs []questionJSON
		json.Unmarshal(g.Questions, &qs)
		resp.Answers = map[string]string{}
		for i, q := range qs {
			var vals []string
			for _, v := range r.PostForm["answer-"+strconv.Itoa(i)] {
				if v = strings.TrimSpace(v); v != "" {
					vals = append(vals, v)
				}
			}
			if len(vals) > 0 {
				resp.Answers[q.Question] = strings.Join(vals, ", ")
			}
		}
		if len(resp.Answers) < len(qs) {
			s.redirect(w, r, next, "error", "Answer every question before sending.")
			return
		}
		done = "Answered"
	default:
		s.redirect(w, r, next, "error", "Choose approve, deny or send answers.")
		return
	}
	if _, err := s.runs.Respond(ctx, actor(ctx), g.RunID, g.ID, resp); err != nil {
		if msg, ok := actionError(err); ok {
			s.redirect(w, r, next, "error", msg)
			return
		}
		s.uiFail(w, r, err)
		return
	}
	s.redirect(w, r, next, "ok", done+" “"+g.Title+"”. The Job continues.")
}

func inboxSubtitle(n int) string {
	switch n {
	case 0:
		return "Every gate that waits for a person, oldest first."
	case 1:
		return "1 open gate, waiting for a decision."
	}
	return strconv.Itoa(n) + " open gates, oldest first."
}

// showArgs renders a tool call's arguments for a person: indented JSON, with string
// values that are themselves JSON (an HTTP body) unfolded, so the payload reads as what
// it is. The API keeps the exact arguments.
func showArgs(args map[string]any) string {
	shown := make(map[string]any, len(args))
	for k, a := range args {
		shown[k] = a
		if str, ok := a.(string); ok && (strings.HasPrefix(str, "{") || strings.HasPrefix(str, "[")) && json.Valid([]byte(str)) {
			shown[k] = json.RawMessage(str)
		}
	}
	b, _ := json.MarshalIndent(shown, "", "  ")
	return string(b)
}
