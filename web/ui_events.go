package web

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"docket/store"
)

// teamStream is the team event stream's URL for a page rendered from start on.
func teamStream(start time.Time) string {
	return "/events?since=" + strconv.FormatInt(start.UnixMilli(), 10)
}

// teamEventsCoalesce gathers a burst of run changes into one round of updates, so a busy
// team does not make every open page refetch itself many times a second.
const teamEventsCoalesce = 300 * time.Millisecond

// uiTeamEvents is the live stream of the team's pages (dashboard, inbox, Jobs list), fed
// by the same in-process notifications the workers publish:
//   - count: the navigation's open-gate badge;
//   - gate: the card of a gate that just opened, for the inbox to append;
//   - closed-<gate id>: the outcome of a gate decided elsewhere, replacing its card;
//   - changed: something moved; lists refresh themselves.
//
// Every event is derived from the database when sent, so a reconnect (or a lagging
// subscriber) only needs the next round to be right again.
func (s *Server) uiTeamEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principal(ctx)
	sub := s.runs.Hub().Subscribe("")
	defer sub.Close()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flush := flusher(w)
	flush()

	canRespond := p.Role.Allows(store.RoleMember)
	announced := map[string]bool{} // gates whose card this stream has sent
	changed := map[string]string{} // run id → latest status, since the last round
	// The page names when it was rendered (a reconnect, the last round it got): gates
	// opened since then are sent first, so none falls between the page and the stream.
	since, err := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
	if err != nil {
		since, _ = strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
	}
	if since > 0 {
		after := time.UnixMilli(since)
		gates, _, err := s.store.ListGates(ctx, p.TeamID, store.GateFilter{Status: "open", After: &after, Limit: 50})
		if err != nil {
			return
		}
		for _, g := range gates {
			changed[g.RunID] = store.RunWaiting
		}
	}
	var timer <-chan time.Time
	if len(changed) > 0 {
		timer = time.After(0)
	}
	ping := time.NewTicker(s.cfg.KeepAlive)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		case <-ping.C:
			if !s.keepAlive(ctx, w, flush) {
				return
			}
		case ev := <-sub.C:
			if ev.TeamID != p.TeamID || ev.Type != "status" {
				continue
			}
			changed[ev.RunID] = ev.Status
			if timer == nil {
				timer = time.After(teamEventsCoalesce)
			}
		case <-timer:
			timer = nil
			sub.Lagged.Store(false)
			if err := s.teamRound(ctx, w, p.TeamID, canRespond, changed, announced); err != nil {
				return
			}
			flush()
			clear(changed)
		}
	}
}

// teamRound sends one round of updates for the runs that changed.
func (s *Server) teamRound(ctx context.Context, w io.Writer, team string, canRespond bool, changed map[string]string, announced map[string]bool) error {
	render := func(event string, c interface {
		Render(context.Context, io.Writer) error
	}) error {
		var buf bytes.Buffer
		if err := c.Render(ctx, &buf); err != nil {
			return err
		}
		return writeSSE(w, event, 0, buf.Bytes())
	}
	_, open, err := s.store.ListGates(ctx, team, store.GateFilter{Status: "open", Limit: 0})
	if err != nil {
		return err
	}
	if err := render("count", gateCount(open)); err != nil {
		return err
	}
	for runID, status := range changed {
		if status == store.RunWaiting {
			g, err := s.store.OpenGateOf(ctx, runID)
			if err != nil {
				return err
			}
			if g == nil || announced[g.ID] {
				continue
			}
			v, err := s.gateView(ctx, *g, inboxConversation, canRespond, "/inbox")
			if err != nil {
				return err
			}
			announced[g.ID] = true
			if err := render("gate", newGateCard(v)); err != nil {
				return err
			}
			continue
		}
		// The run moved on: any of its gates decided in the last minutes may still show
		// as open in some tab.
		gates, _, err := s.store.ListGates(ctx, team, store.GateFilter{RunID: runID, Limit: 100})
		if err != nil {
			return err
		}
		for _, g := range gates {
			if g.Status == "open" || g.DecidedAt == nil || time.Since(*g.DecidedAt) > 5*time.Minute {
				continue
			}
			if err := render("closed-"+g.ID, gateClosed(gateView{Gate: g})); err != nil {
				return err
			}
		}
	}
	// The round's id is its time: a reconnect asks for what opened after it.
	return writeSSE(w, "changed", int(time.Now().UnixMilli()), nil)
}
