package web

import (
	"net/http"
	"time"

	"docket/store"
)

// dashboardView is what the dashboard shows at a glance.
type dashboardView struct {
	Counts         map[string]int
	FailedRecently int
	OpenGates      int
	Gates          []store.Gate
	Running        []store.Run
	Failures       []store.Run
	Queues         []store.Queue
	QueueDepth     int
	// Fresh is a team that has never run a Job: the dashboard teaches how to start one.
	Fresh   bool
	Start   startHelp
	CanWork bool
}

// startHelp is what the empty dashboard needs to show working commands.
type startHelp struct {
	BaseURL   string
	TeamID    string
	AgentID   string
	AgentName string
	DataDir   string
}

func (s *Server) dashboardPage(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx := r.Context()
	p := principal(ctx)
	pd, err := s.pageData(w, r, "Dashboard", "dashboard")
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	pd.Stream = teamStream(start)
	v := dashboardView{CanWork: pd.Can(store.RoleMember)}
	if v.Counts, v.FailedRecently, err = s.store.TeamRunCounts(ctx, p.TeamID, time.Now().Add(-24*time.Hour)); err != nil {
		s.uiFail(w, r, err)
		return
	}
	if v.Gates, v.OpenGates, err = s.store.ListGates(ctx, p.TeamID, store.GateFilter{Status: "open", Limit: 5}); err != nil {
		s.uiFail(w, r, err)
		return
	}
	if v.Running, _, err = s.store.ListRuns(ctx, p.TeamID, store.RunFilter{Status: store.RunRunning, Limit: 8}); err != nil {
		s.uiFail(w, r, err)
		return
	}
	if v.Failures, _, err = s.store.ListRuns(ctx, p.TeamID, store.RunFilter{Status: store.RunFailed, Limit: 5}); err != nil {
		s.uiFail(w, r, err)
		return
	}
	if v.Queues, _, err = s.store.ListQueues(ctx, p.TeamID, store.QueueFilter{Limit: 8}); err != nil {
		s.uiFail(w, r, err)
		return
	}
	for _, q := range v.Queues {
		v.QueueDepth += q.Counts.Pending + q.Counts.Postponed
	}
	total := 0
	for _, n := range v.Counts {
		total += n
	}
	v.Fresh = total == 0
	if v.Fresh {
		v.Start = startHelp{BaseURL: "http://" + r.Host, TeamID: p.TeamID, DataDir: s.cfg.DataDir}
		agents, _, err := s.store.ListAgents(ctx, p.TeamID, p.UserID, store.AgentFilter{Limit: 1})
		if err != nil {
			s.uiFail(w, r, err)
			return
		}
		if len(agents) > 0 {
			v.Start.AgentID, v.Start.AgentName = agents[0].ID, agents[0].Name
		}
	}
	s.render(w, r, dashboardPage(pd, v))
}
