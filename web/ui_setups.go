package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"docket/runtime"
	"docket/store"
)

// setupForm is the Setup editor's state: what the person typed, and the rule each field
// broke (keyed by the form field's name) when the Setup was refused.
type setupForm struct {
	AgentID string
	// From is the Setup the form started from; the new one keeps the rest of its config.
	From string
	Name string
	// AgentName and Description are asked only when creating an Assignment.
	AgentName   string
	Description string
	Model       string
	SOP         string
	// Messages is a SOP given as a list of {role, content} messages, edited as JSON.
	Messages         bool
	Tools            []string
	Require          []string
	DistinctApprover bool
	ExpiresAfter     string
	OnExpiry         string
	Errors           map[string]string
	// Problem is a refusal no single field explains.
	Problem string
}

// Err is the error to show next to a field, if any.
func (f setupForm) Err(field string) string { return f.Errors[field] }

func (f setupForm) Has(list []string, name string) bool { return slices.Contains(list, name) }

// toolOption is one tool of the runtime's catalog, as the Setup editor offers it.
type toolOption struct {
	Name, Description string
	// Needs says what the tool needs before it works (e.g. an allowlist), if anything.
	Needs string
}

// toolCatalog lists the tools this runtime offers: the registry the run loop draws from.
func (s *Server) toolCatalog() []toolOption {
	reg := s.runs.Tools()
	var out []toolOption
	for _, n := range reg.Names() {
		t := reg.Get(n)
		o := toolOption{Name: n, Description: firstSentence(t.Description)}
		if t.NeedsConfig != nil && !t.NeedsConfig(runtime.SetupData{}) {
			o.Needs = "needs configuration in the Setup's config (e.g. http_allowlist) before it is offered by default"
		}
		out = append(out, o)
	}
	return out
}

// defaultTools are the tools a Setup that lists none gets.
func (s *Server) defaultTools(d runtime.SetupData) []string {
	d.Tools = nil
	var out []string
	for _, t := range s.runs.Tools().Enabled(d) {
		out = append(out, t.Name)
	}
	return out
}

func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i > 0 {
		return s[:i+1]
	}
	return s
}

// formFromSetup fills the editor from a Setup's config.
func (s *Server) formFromSetup(agentID string, b store.Build, name string) setupForm {
	f := setupForm{AgentID: agentID, From: b.ID, Name: name}
	c, err := runtime.ParseSetupConfig(b.Config)
	if err != nil {
		f.Problem = "This Setup's config could not be read; the form starts empty."
		return f
	}
	d := c.Data
	f.Model = d.Models.Agent.Model
	switch in := d.Input.(type) {
	case string:
		f.SOP = in
	default:
		raw, _ := json.MarshalIndent(in, "", "  ")
		f.SOP, f.Messages = string(raw), true
	}
	f.Tools = d.Tools
	if f.Tools == nil {
		f.Tools = s.defaultTools(d)
	}
	if a := d.Approval; a != nil {
		f.Require, f.DistinctApprover, f.ExpiresAfter, f.OnExpiry = a.Require, a.DistinctApprover, a.ExpiresAfter, a.OnExpiry
	}
	return f
}

// readSetupForm reads the editor's fields from a submitted form.
func readSetupForm(r *http.Request) setupForm {
	v := r.PostForm
	return setupForm{AgentID: r.PathValue("agent_id"), From: v.Get("from"), Name: strings.TrimSpace(v.Get("name")),
		AgentName: strings.TrimSpace(v.Get("agent_name")), Description: strings.TrimSpace(v.Get("description")),
		Model: strings.TrimSpace(v.Get("model")), SOP: strings.ReplaceAll(v.Get("sop"), "\r\n", "\n"), Messages: v.Get("messages") == "1",
		Tools: v["tools"], Require: v["require"], DistinctApprover: v.Get("distinct_approver") == "1",
		ExpiresAfter: strings.TrimSpace(v.Get("expires_after")), OnExpiry: v.Get("on_expiry")}
}

// setupConfig applies the form to base (the config it started from) and validates the
// result with the rules the API applies. A broken rule lands on the form's field.
func (s *Server) setupConfig(base runtime.SetupConfig, f *setupForm) (json.RawMessage, *runtime.SetupConfig, bool) {
	c := base
	c.Version = "v2"
	d := &c.Data
	d.Models.Agent.Model = f.Model
	if f.Messages {
		var msgs []any
		if err := json.Unmarshal([]byte(f.SOP), &msgs); err != nil {
			f.fail("sop", "This SOP is a list of messages: write it as a JSON list of {\"role\", \"content\"} objects ("+err.Error()+").")
			return nil, nil, false
		}
		d.Input = msgs
	} else {
		d.Input = f.SOP
	}
	tools := slices.Clone(f.Tools)
	if tools == nil {
		tools = []string{}
	}
	slices.Sort(tools)
	if def := s.defaultTools(*d); slices.Equal(tools, def) {
		// The default set, kept as "the default" so tools added later reach it too.
		tools = nil
	}
	d.Tools = tools
	d.Approval = nil
	if len(f.Require) > 0 || f.DistinctApprover || f.ExpiresAfter != "" || (f.OnExpiry != "" && f.OnExpiry != "deny") {
		d.Approval = &runtime.ApprovalPolicy{Require: f.Require, DistinctApprover: f.DistinctApprover, ExpiresAfter: f.ExpiresAfter, OnExpiry: f.OnExpiry}
	}
	raw, err := setupConfigJSON(&c)
	if err != nil {
		f.refused(err)
		return nil, nil, false
	}
	return raw, &c, true
}

func (f *setupForm) fail(field, msg string) {
	if f.Errors == nil {
		f.Errors = map[string]string{}
	}
	f.Errors[field] = msg
}

// refused puts a validation error next to the field it is about: the Setup rules'
// fields (runtime.FieldError) and the store's name rule; anything else heads the form.
func (f *setupForm) refused(err error) {
	var fe *runtime.FieldError
	if errors.As(err, &fe) {
		msg := capitalize(fe.Msg) + "."
		switch {
		case fe.Field == "models.agent.model":
			f.fail("model", msg)
		case fe.Field == "input" || strings.HasPrefix(fe.Field, "input["):
			f.fail("sop", msg)
		case strings.HasPrefix(fe.Field, "tools"):
			f.fail("tools", msg)
		case strings.HasPrefix(fe.Field, "approval.require"):
			f.fail("require", msg)
		case fe.Field == "approval.expires_after":
			f.fail("expires_after", msg)
		case fe.Field == "approval.on_expiry":
			f.fail("on_expiry", msg)
		default:
			f.Problem = capitalize(fe.Error()) + "."
		}
		return
	}
	var se *store.Error
	if errors.As(err, &se) && errors.Is(se.Kind, store.ErrInvalid) && strings.HasPrefix(se.Msg, "name ") {
		field := "name"
		if f.AgentName != "" || f.AgentID == "" {
			field = "agent_name"
		}
		f.fail(field, capitalize(se.Msg)+".")
		return
	}
	if msg, ok := actionError(err); ok {
		f.Problem = msg
	}
}

// setupEditor is what the Setup editor page shows.
type setupEditor struct {
	Agent   store.Agent
	Base    store.Build
	Form    setupForm
	Catalog []toolOption
}

// newSetupPage opens the editor on a Setup (?from=, default the live one): saving it
// makes a new Setup, never a change to one a Job may have used.
func (s *Server) newSetupPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principal(ctx)
	a, err := s.store.GetAgent(ctx, p.TeamID, r.PathValue("agent_id"), p.UserID)
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	base, next, err := s.setupBase(r, a, r.URL.Query().Get("from"))
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	s.renderSetupEditor(w, r, http.StatusOK, setupEditor{Agent: a, Base: base, Form: s.formFromSetup(a.ID, base, "Setup "+strconv.Itoa(next))})
}

// setupBase is the Setup an edit starts from (from, else the live one, else the newest)
// and the revision number the new one will get.
func (s *Server) setupBase(r *http.Request, a store.Agent, from string) (store.Build, int, error) {
	ctx := r.Context()
	team := principal(ctx).TeamID
	builds, total, err := s.store.ListBuilds(ctx, team, a.ID, 1, 0)
	if err != nil {
		return store.Build{}, 0, err
	}
	next := total + 1
	if len(builds) > 0 {
		next = builds[0].RevisionNumber + 1
	}
	switch {
	case from != "":
	case a.LiveBuildID != nil:
		from = *a.LiveBuildID
	case len(builds) > 0:
		from = builds[0].ID
	default:
		return store.Build{Config: json.RawMessage(`{"version":"v2","data":{"models":{"agent":{"model":""}},"input":""}}`)}, next, nil
	}
	b, err := s.store.GetBuild(ctx, team, a.ID, from)
	return b, next, err
}

func (s *Server) renderSetupEditor(w http.ResponseWriter, r *http.Request, status int, v setupEditor) {
	pd, err := s.pageData(w, r, "New Setup · "+v.Agent.Name, "assignments")
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	v.Catalog = s.toolCatalog()
	s.renderStatus(w, r, status, setupEditorPage(pd, v))
}

// createSetupPost saves the editor as a new draft Setup (createRevision).
func (s *Server) createSetupPost(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principal(ctx)
	if err := r.ParseForm(); err != nil {
		s.uiError(w, r, http.StatusBadRequest, "Not accepted", "The form could not be read: send it again.")
		return
	}
	a, err := s.store.GetAgent(ctx, p.TeamID, r.PathValue("agent_id"), p.UserID)
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	f := readSetupForm(r)
	base, _, err := s.setupBase(r, a, f.From)
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	cfg, _ := runtime.ParseSetupConfig(base.Config)
	raw, c, ok := s.setupConfig(cfg, &f)
	if ok {
		nb := store.NewBuild{Name: f.Name, Config: raw, SubAgentIDs: c.Data.SubAgents}
		if base.ID != "" {
			nb.SourceBuildID = &base.ID
		}
		b, err := s.store.CreateBuild(ctx, actor(ctx), a.ID, nb)
		if err == nil {
			s.redirect(w, r, setupURL(a.ID, b.ID), "ok", "Saved Setup #"+strconv.Itoa(b.RevisionNumber)+" as a draft. Compare it with the live Setup, then promote it to make new Jobs use it.")
			return
		}
		if _, known := actionError(err); !known {
			s.uiFail(w, r, err)
			return
		}
		f.refused(err)
	}
	s.renderSetupEditor(w, r, http.StatusBadRequest, setupEditor{Agent: a, Base: base, Form: f})
}

// setupView is a Setup's page: its content, and how it differs from the live Setup.
type setupView struct {
	Agent  store.Agent
	Build  store.Build
	Live   *store.Build
	Diff   []diffRow
	Lines  []string
	CanAct bool
}

func (s *Server) setupPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principal(ctx)
	a, err := s.store.GetAgent(ctx, p.TeamID, r.PathValue("agent_id"), p.UserID)
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	b, err := s.store.GetBuild(ctx, p.TeamID, a.ID, r.PathValue("build_id"))
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	v := setupView{Agent: a, Build: b, CanAct: p.Role.Allows(store.RoleMember), Lines: s.setupLines(b)}
	if a.LiveBuildID != nil && *a.LiveBuildID != b.ID {
		live, err := s.store.GetBuild(ctx, p.TeamID, a.ID, *a.LiveBuildID)
		if err != nil {
			s.uiFail(w, r, err)
			return
		}
		v.Live = &live
		v.Diff = sideBySide(s.setupLines(live), v.Lines)
	}
	pd, err := s.pageData(w, r, "Setup #"+strconv.Itoa(b.RevisionNumber)+" · "+a.Name, "assignments")
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	s.render(w, r, setupPage(pd, v))
}

// promoteSetupPost makes a Setup live (promoteRevision): new Jobs start on it, Jobs
// already started keep the Setup they pinned.
func (s *Server) promoteSetupPost(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principal(ctx)
	agentID, id := r.PathValue("agent_id"), r.PathValue("build_id")
	b, err := s.store.GetBuild(ctx, p.TeamID, agentID, id)
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	if err := s.store.PromoteBuild(ctx, actor(ctx), b.ID, nil, nil); err != nil {
		s.actionFailed(w, r, setupURL(agentID, id), err)
		return
	}
	s.redirect(w, r, "/assignments/"+agentID, "ok", "Setup #"+strconv.Itoa(b.RevisionNumber)+" is live: new Jobs use it. Jobs already started keep the Setup they started on.")
}

func setupURL(agentID, buildID string) string {
	return "/assignments/" + agentID + "/setups/" + buildID
}

// setupLines writes a Setup as lines a person compares: one line per setting, then the
// SOP line by line, so a diff points at the sentence that changed.
func (s *Server) setupLines(b store.Build) []string {
	c, err := runtime.ParseSetupConfig(b.Config)
	if err != nil {
		return strings.Split(string(b.Config), "\n")
	}
	d := c.Data
	list := func(l []string, none string) string {
		if len(l) == 0 {
			return none
		}
		return strings.Join(l, ", ")
	}
	tools := "default: " + list(s.defaultTools(d), "none")
	if d.Tools != nil {
		tools = list(d.Tools, "none")
	}
	out := []string{"Model: " + d.Models.Agent.Model, "Tools: " + tools}
	if a := d.Approval; a != nil {
		out = append(out, "Approval required for: "+list(a.Require, "nothing"), "Distinct approver: "+yesNo(a.DistinctApprover),
			"Gates expire after: "+orPlaceholder(a.ExpiresAfter, "never"), "On expiry: "+orPlaceholder(a.OnExpiry, "deny"))
	} else {
		out = append(out, "Approval required for: nothing")
	}
	if d.MaxTurns != nil {
		out = append(out, "Max turns: "+strconv.Itoa(*d.MaxTurns))
	}
	if d.Temperature != nil {
		out = append(out, "Temperature: "+strconv.FormatFloat(*d.Temperature, 'f', -1, 64))
	}
	for _, l := range []struct {
		name string
		v    []string
	}{{"HTTP allowlist", d.HTTPAllowlist}, {"Subagents", d.SubAgents}, {"Handover targets", b.HandoverTargetIDs}, {"Files", d.Files}, {"Skills", d.Skills}} {
		if len(l.v) > 0 {
			out = append(out, l.name+": "+strings.Join(l.v, ", "))
		}
	}
	if len(d.Options) > 0 {
		o, _ := json.Marshal(d.Options)
		out = append(out, "Options: "+string(o))
	}
	out = append(out, "", "SOP:")
	switch in := d.Input.(type) {
	case string:
		out = append(out, strings.Split(in, "\n")...)
	default:
		raw, _ := json.MarshalIndent(in, "", "  ")
		out = append(out, strings.Split(string(raw), "\n")...)
	}
	return out
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// setupModel is the model a Setup runs on, for lists.
func setupModel(b *store.Build) string {
	if b == nil {
		return ""
	}
	c, err := runtime.ParseSetupConfig(b.Config)
	if err != nil {
		return ""
	}
	return c.Data.Models.Agent.Model
}

// diffRow is one row of a side-by-side comparison. Kind is same, del (only on the
// left), add (only on the right) or change (a left line replaced by a right one).
type diffRow struct {
	Kind          string
	Left, Right   string
	LeftN, RightN int
}

// maxDiffLines bounds the comparison's quadratic table; longer Setups are compared by
// their first lines only, which the page says.
const maxDiffLines = 1500

// sideBySide compares two texts line by line (longest common subsequence) and pairs the
// removed and added lines between unchanged ones, as a side-by-side view shows them.
func sideBySide(a, b []string) []diffRow {
	a, b = a[:min(len(a), maxDiffLines)], b[:min(len(b), maxDiffLines)]
	n, m := len(a), len(b)
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var rows []diffRow
	var dels, adds []diffRow
	flush := func() {
		k := 0
		for ; k < len(dels) && k < len(adds); k++ {
			rows = append(rows, diffRow{Kind: "change", Left: dels[k].Left, LeftN: dels[k].LeftN, Right: adds[k].Right, RightN: adds[k].RightN})
		}
		rows = append(rows, dels[k:]...)
		rows = append(rows, adds[k:]...)
		dels, adds = dels[:0], adds[:0]
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			flush()
			rows = append(rows, diffRow{Kind: "same", Left: a[i], LeftN: i + 1, Right: b[j], RightN: j + 1})
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			adds = append(adds, diffRow{Kind: "add", Right: b[j], RightN: j + 1})
			j++
		default:
			dels = append(dels, diffRow{Kind: "del", Left: a[i], LeftN: i + 1})
			i++
		}
	}
	flush()
	return rows
}

// diffChanged counts the rows that differ.
func diffChanged(rows []diffRow) int {
	n := 0
	for _, r := range rows {
		if r.Kind != "same" {
			n++
		}
	}
	return n
}

func lineNo(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func editorSubtitle(base store.Build) string {
	if base.ID == "" {
		return "This Assignment has no Setup yet: write its first one."
	}
	return "Starting from Setup #" + strconv.Itoa(base.RevisionNumber) + " (" + buildStatusLabel(base.Status) + "). Saving never changes a Setup a Job may have used."
}

func sopHint(messages bool) string {
	if messages {
		return "This SOP is a list of messages: edit the JSON list of {\"role\", \"content\"} objects."
	}
	return "The standing instructions: what the Assignment does, how, and when it must ask."
}
