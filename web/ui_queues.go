package web

import (
	"net/http"
	"time"

	"docket/store"
)

// queuesPerPage is how many queues one page of the list shows.
const queuesPerPage = 50

// queuesPage lists the team's queues with how many cases wait in each status. It
// refreshes itself when the team's Jobs move, as cases move with them.
func (s *Server) queuesPage(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx := r.Context()
	pd, err := s.pageData(w, r, "Queues", "queues")
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	pd.Stream = teamStream(start)
	pg := paginate(r, queuesPerPage)
	qs, total, err := s.store.ListQueues(ctx, principal(ctx).TeamID, store.QueueFilter{Limit: pg.Limit, Offset: pg.Offset})
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	pg.Total = total
	s.render(w, r, queuesPage(pd, qs, pg))
}

// casesURL is the cases page of a queue.
func casesURL(queueID string) string { return "/cases?queue=" + queueID }
