package web

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"docket/store"
)

// auditPerPage is how many audit entries one page shows.
const auditPerPage = 50

// auditQuery is the audit page's filter form, as it was submitted.
type auditQuery struct {
	Actor, Operation, Channel, Since, Until string
}

// auditChannels are the channel filter's choices.
var auditChannels = []string{"", "api", "ui", "cli", "mcp", "system"}

// auditFilter reads the filter form; since and until are dates (YYYY-MM-DD, UTC), until
// inclusive.
func auditFilter(r *http.Request) (auditQuery, store.AuditFilter, string) {
	q := r.URL.Query()
	aq := auditQuery{Actor: strings.TrimSpace(q.Get("actor")), Operation: strings.TrimSpace(q.Get("operation")),
		Channel: q.Get("channel"), Since: q.Get("since"), Until: q.Get("until")}
	f := store.AuditFilter{Actor: aq.Actor, Operation: aq.Operation}
	for _, c := range auditChannels {
		if c == aq.Channel {
			f.Channel = c
		}
	}
	var problem string
	if aq.Since != "" {
		if t, err := time.Parse(time.DateOnly, aq.Since); err == nil {
			f.Since = &t
		} else {
			problem = "From: " + aq.Since + " is not a date (YYYY-MM-DD)."
		}
	}
	if aq.Until != "" {
		if t, err := time.Parse(time.DateOnly, aq.Until); err == nil {
			t = t.Add(24 * time.Hour)
			f.Until = &t
		} else {
			problem = "To: " + aq.Until + " is not a date (YYYY-MM-DD)."
		}
	}
	return aq, f, problem
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	pd, err := s.pageData(w, r, "Audit log", "audit")
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	aq, f, problem := auditFilter(r)
	if problem != "" {
		pd.Flash = &flash{Kind: "error", Text: problem}
	}
	pg := paginate(r, auditPerPage)
	f.Limit, f.Offset = pg.Limit, pg.Offset
	entries, total, err := s.store.ListAudit(ctx, principal(ctx).TeamID, f)
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	pg.Total = total
	csvURL := "/audit.csv"
	if r.URL.RawQuery != "" {
		q := r.URL.Query()
		q.Del("page")
		csvURL += "?" + q.Encode()
	}
	s.render(w, r, auditPage(pd, aq, entries, pg, csvURL))
}

// auditCSV exports every entry the filter matches, newest first, in pages so memory stays
// flat however long the log is. Entries written after the export began are left out.
func (s *Server) auditCSV(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	_, f, problem := auditFilter(r)
	if problem != "" {
		s.uiError(w, r, http.StatusBadRequest, "Not accepted", problem)
		return
	}
	now := time.Now()
	// Everything up to this millisecond, so pages stay put while new entries arrive.
	end := now.Truncate(time.Millisecond).Add(time.Millisecond)
	if f.Until == nil || f.Until.After(end) {
		f.Until = &end
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="docket-audit-`+now.UTC().Format("20060102-150405")+`.csv"`)
	cw := csv.NewWriter(w)
	cw.Write([]string{"time", "seq", "user_email", "user_id", "api_key_id", "api_key_name", "channel", "operation",
		"target_type", "target_id", "outcome", "ip", "detail", "hash"})
	f.Limit = 1000
	for f.Offset = 0; ; f.Offset += f.Limit {
		entries, _, err := s.store.ListAudit(ctx, principal(ctx).TeamID, f)
		if err != nil {
			if info := requestInfoFrom(ctx); info != nil {
				info.cause = err
			}
			return
		}
		for _, e := range entries {
			cw.Write([]string{e.Time.UTC().Format(timestampLayout), strconv.FormatInt(e.Seq, 10), deref(e.UserEmail), deref(e.UserID),
				deref(e.APIKeyID), deref(e.APIKeyName), e.Channel, e.Operation, e.TargetType, e.TargetID, e.Outcome, deref(e.IP),
				string(e.Detail), e.Hash})
		}
		cw.Flush()
		if len(entries) < f.Limit || cw.Error() != nil {
			return
		}
	}
}

// auditWho names an entry's actor: the user's email, the API key, or the system.
func auditWho(e store.AuditEntry) string {
	switch {
	case e.UserEmail != nil:
		return *e.UserEmail
	case e.APIKeyName != nil:
		return "key " + *e.APIKeyName
	case e.UserID != nil:
		return *e.UserID
	}
	return "docket"
}
