package web

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"docket/runtime"
	"docket/store"
)

// assignmentsPerPage is how many Assignments one page of the list shows, grouped by
// folder within the page.
const assignmentsPerPage = 100

// setupsPerPage is how many Setups an Assignment's page lists.
const setupsPerPage = 20

// folderGroup is the Assignments of one folder (Path "" is those in none).
type folderGroup struct {
	Path   string
	Agents []store.Agent
}

func (s *Server) assignmentsPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principal(ctx)
	pd, err := s.pageData(w, r, "Assignments", "assignments")
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	pg := paginate(r, assignmentsPerPage)
	agents, total, err := s.store.ListAgents(ctx, p.TeamID, p.UserID, store.AgentFilter{Limit: pg.Limit, Offset: pg.Offset})
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	pg.Total = total
	folders, err := s.store.ListFolders(ctx, p.TeamID)
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	s.render(w, r, assignmentsPage(pd, groupByFolder(agents, folders), pg))
}

// groupByFolder sorts a page of Assignments into their folders, named by their path
// ("Finance / Invoices"); Assignments without a folder come first.
func groupByFolder(agents []store.Agent, folders []store.Folder) []folderGroup {
	paths := folderPaths(folders)
	byPath := map[string]*folderGroup{}
	var out []*folderGroup
	for _, a := range agents {
		path := ""
		if a.FolderID != nil {
			path = paths[*a.FolderID]
		}
		g := byPath[path]
		if g == nil {
			g = &folderGroup{Path: path}
			byPath[path] = g
			out = append(out, g)
		}
		g.Agents = append(g.Agents, a)
	}
	slices.SortFunc(out, func(a, b *folderGroup) int { return cmp.Compare(strings.ToLower(a.Path), strings.ToLower(b.Path)) })
	groups := make([]folderGroup, len(out))
	for i, g := range out {
		groups[i] = *g
	}
	return groups
}

func folderPaths(folders []store.Folder) map[string]string {
	byID := map[string]store.Folder{}
	for _, f := range folders {
		byID[f.ID] = f
	}
	paths := map[string]string{}
	for _, f := range folders {
		names := []string{f.Name}
		for p, seen := f.ParentFolderID, 0; p != nil && seen < len(folders); seen++ {
			parent, ok := byID[*p]
			if !ok {
				break
			}
			names = append([]string{parent.Name}, names...)
			p = parent.ParentFolderID
		}
		paths[f.ID] = strings.Join(names, " / ")
	}
	return paths
}

// assignmentView is an Assignment's page.
type assignmentView struct {
	Agent  store.Agent
	Folder string
	Live   *store.Build
	Builds []store.Build
	Pg     pagination
	Jobs   []store.Run
	CanAct bool
	Lines  []string
}

func (s *Server) assignmentPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principal(ctx)
	a, err := s.store.GetAgent(ctx, p.TeamID, r.PathValue("agent_id"), p.UserID)
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	v := assignmentView{Agent: a, CanAct: p.Role.Allows(store.RoleMember), Pg: paginate(r, setupsPerPage)}
	if v.Builds, v.Pg.Total, err = s.store.ListBuilds(ctx, p.TeamID, a.ID, v.Pg.Limit, v.Pg.Offset); err != nil {
		s.uiFail(w, r, err)
		return
	}
	if a.LiveBuildID != nil {
		live, err := s.store.GetBuild(ctx, p.TeamID, a.ID, *a.LiveBuildID)
		if err != nil {
			s.uiFail(w, r, err)
			return
		}
		v.Live, v.Lines = &live, s.setupLines(live)
	}
	if a.FolderID != nil {
		folders, err := s.store.ListFolders(ctx, p.TeamID)
		if err != nil {
			s.uiFail(w, r, err)
			return
		}
		v.Folder = folderPaths(folders)[*a.FolderID]
	}
	if v.Jobs, _, err = s.store.ListRuns(ctx, p.TeamID, store.RunFilter{AgentID: a.ID, Limit: 5}); err != nil {
		s.uiFail(w, r, err)
		return
	}
	pd, err := s.pageData(w, r, a.Name, "assignments")
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	s.render(w, r, assignmentPage(pd, v))
}

// maxDescription mirrors createAgent's limit on description.
const maxDescription = 2000

// defaultModel is what a new Assignment's form proposes (DESIGN §2's default).
const defaultModel = "qwen3:4b"

func (s *Server) newAssignmentPage(w http.ResponseWriter, r *http.Request) {
	f := setupForm{Model: defaultModel, Name: "Setup 1", Tools: s.defaultTools(runtime.SetupData{})}
	s.renderAssignmentEditor(w, r, http.StatusOK, f)
}

func (s *Server) renderAssignmentEditor(w http.ResponseWriter, r *http.Request, status int, f setupForm) {
	pd, err := s.pageData(w, r, "New Assignment", "assignments")
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	s.renderStatus(w, r, status, newAssignmentPage(pd, setupEditor{Form: f, Catalog: s.toolCatalog()}))
}

// createAssignmentPost creates an Assignment with its first Setup, live at once
// (createAgent with build).
func (s *Server) createAssignmentPost(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		s.uiError(w, r, http.StatusBadRequest, "Not accepted", "The form could not be read: send it again.")
		return
	}
	f := readSetupForm(r)
	f.Name = "Setup 1"
	if len(f.Description) > maxDescription {
		f.fail("description", "The description is too long: at most 2000 characters.")
	}
	raw, c, ok := s.setupConfig(runtime.SetupConfig{}, &f)
	if ok && len(f.Errors) == 0 {
		a, _, err := s.store.CreateAgent(ctx, actor(ctx), store.NewAgent{Name: f.AgentName, Description: f.Description,
			Build: &store.NewBuild{Name: f.Name, Config: raw, SubAgentIDs: c.Data.SubAgents}})
		if err == nil {
			s.redirect(w, r, "/assignments/"+a.ID, "ok", "Created "+a.Name+". Its first Setup is live: start a Job on it, or give it a case trigger.")
			return
		}
		if _, known := actionError(err); !known {
			s.uiFail(w, r, err)
			return
		}
		f.refused(err)
	}
	s.renderAssignmentEditor(w, r, http.StatusBadRequest, f)
}

// buildStatusLabel names a Setup's status.
func buildStatusLabel(status string) string {
	switch status {
	case "live":
		return "Live"
	case "draft":
		return "Draft"
	case "archived":
		return "Was live"
	}
	return capitalize(status)
}

func buildTitle(b store.Build) string {
	if b.RevisionName != nil && *b.RevisionName != "" {
		return *b.RevisionName
	}
	return b.Name
}

// setupByline is who made a Setup and whether it can still change.
func setupByline(b store.Build) string {
	var out string
	if b.CreatedByName != nil {
		out = "by " + *b.CreatedByName
	}
	if b.FirstRunAt != nil {
		out += " · used by a Job, so it never changes"
	}
	return out
}

func folderCrumb(path string) string {
	if path == "" {
		return ""
	}
	return " / " + path
}

// SetupLabel names the Setup a Job ran on by its number when it is on this page.
func (v assignmentView) SetupLabel(buildID string) string {
	for _, b := range v.Builds {
		if b.ID == buildID {
			return "Setup #" + strconv.Itoa(b.RevisionNumber)
		}
	}
	return "Setup " + shortID(buildID)
}
