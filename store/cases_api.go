package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxCaseTitle is the longest case title, in characters.
const MaxCaseTitle = 500

// NewCase is one case to add to a queue.
type NewCase struct {
	Title string
	Data  string
	// Priority is none, medium or high; empty means none.
	Priority string
	// Labels are attached at creation; the ones the queue lacks are created on it.
	Labels     []LabelKV
	SourceFile *string
}

// validateNewCases checks every case before anything is written and names the first bad
// field as cases[i].field, so a batch is accepted whole or not at all.
func validateNewCases(cs []NewCase) error {
	if len(cs) == 0 {
		return invalid("cases: give at least one case")
	}
	for i, c := range cs {
		switch n := utf8.RuneCountInString(c.Title); {
		case strings.TrimSpace(c.Title) == "":
			return invalid("cases[%d].title must not be blank", i)
		case n > MaxCaseTitle:
			return invalid("cases[%d].title is %d characters; at most %d are allowed (put long text in data)", i, n, MaxCaseTitle)
		}
		if _, ok := PriorityRank(c.Priority); !ok && c.Priority != "" {
			return invalid("cases[%d].priority %q: want none, medium or high", i, c.Priority)
		}
		for j, l := range c.Labels {
			if strings.TrimSpace(l.Value) == "" {
				return invalid("cases[%d].labels[%d].value must not be blank", i, j)
			}
		}
	}
	return nil
}

// requireCaseQueue fails with not found unless queueID is a queue of team.
func requireCaseQueue(ctx context.Context, q querier, team, queueID string) error {
	var n int
	if err := q.QueryRowContext(ctx, "SELECT count(*) FROM queues WHERE id = ? AND team_id = ?", queueID, team).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return notFound("queue %s not found", queueID)
	}
	return nil
}

// CreateCases adds cases to a team's queue in one transaction: all of them, with their
// labels and a "created" event each, or none.
func (s *Store) CreateCases(ctx context.Context, a Actor, queueID string, cs []NewCase) ([]Case, error) {
	if err := validateNewCases(cs); err != nil {
		return nil, err
	}
	var out []Case
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		var err error
		if out, err = s.createCasesTx(ctx, tx, a, queueID, cs); err != nil {
			return Target{}, err
		}
		d := map[string]any{"count": len(cs)}
		if len(cs) == 1 {
			d["case_id"] = out[0].ID
		}
		return Target{Type: "queue", ID: queueID, Detail: d}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// createCasesTx inserts validated cases, their labels and "created" events inside tx.
func (s *Store) createCasesTx(ctx context.Context, tx *sql.Tx, a Actor, queueID string, cs []NewCase) ([]Case, error) {
	now := s.nowMs()
	out := make([]Case, len(cs))
	if err := requireCaseQueue(ctx, tx, a.TeamID, queueID); err != nil {
		return nil, err
	}
	var creator *UserRef
	if a.UserID != "" {
		var id, email, name sql.NullString
		err := tx.QueryRowContext(ctx, "SELECT id, email, name FROM users WHERE id = ?", a.UserID).Scan(&id, &email, &name)
		if err != nil && err != sql.ErrNoRows {
			return nil, err
		}
		creator = scanUserRef(id, email, name)
	}
	labelIDs, err := s.createCaseLabels(ctx, tx, queueID, cs)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(cs))
	var links [][2]string
	for i, nc := range cs {
		rank, _ := PriorityRank(nc.Priority)
		ids[i] = NewID()
		for _, l := range nc.Labels {
			links = append(links, [2]string{ids[i], labelIDs[l]})
		}
		out[i] = Case{ID: ids[i], QueueID: queueID, TeamID: a.TeamID, Title: nc.Title, Data: nc.Data, Priority: priorities[rank],
			Status: "pending", DisplayStatus: "pending", RunAfter: Time(now), SourceFile: nc.SourceFile, CreatedBy: creator,
			CreatedAt: Time(now), UpdatedAt: Time(now), Labels: []Label{}}
	}
	// Multi-row statements: FTS5 flushes its pending index data at the end of every
	// statement that writes to it, so one statement per chunk instead of one per case
	// is what makes a batch cheap.
	for _, chunk := range chunks(len(cs), 200) {
		args := make([]any, 0, 11*len(chunk))
		for _, i := range chunk {
			c := out[i]
			rank, _ := PriorityRank(c.Priority)
			args = append(args, c.ID, queueID, a.TeamID, c.Title, c.Data, rank, now, nullStr(c.SourceFile), optional(a.UserID), now, now)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO cases(id, queue_id, team_id, title, data, priority, run_after, source_file, created_by, created_at, updated_at)
			VALUES `+placeholders(len(chunk), 11), args...); err != nil {
			return nil, fmt.Errorf("insert cases: %w", err)
		}
	}
	for _, chunk := range chunks(len(links), 400) {
		args := make([]any, 0, 2*len(chunk))
		for _, i := range chunk {
			args = append(args, links[i][0], links[i][1])
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO case_labels(case_id, label_id) VALUES "+placeholders(len(chunk), 2)+" ON CONFLICT DO NOTHING", args...); err != nil {
			return nil, fmt.Errorf("label cases: %w", err)
		}
	}
	events := make([]caseEvent, len(ids))
	for i, id := range ids {
		events[i] = caseEvent{caseID: id, typ: "created", to: "pending"}
	}
	if err := appendCaseEvents(ctx, tx, a, now, events); err != nil {
		return nil, err
	}
	if err := fillNewCaseLabels(ctx, tx, queueID, cs, labelIDs, out); err != nil {
		return nil, err
	}
	return out, nil
}

// chunks splits the indexes 0..n-1 into runs of at most size.
func chunks(n, size int) [][]int {
	var out [][]int
	for start := 0; start < n; start += size {
		c := make([]int, 0, min(size, n-start))
		for i := start; i < min(n, start+size); i++ {
			c = append(c, i)
		}
		out = append(out, c)
	}
	return out
}

// placeholders is "(?, …), (?, …)…": rows tuples of cols parameters.
func placeholders(rows, cols int) string {
	tuple := "(" + strings.Repeat("?, ", cols-1) + "?)"
	return strings.Repeat(tuple+", ", rows-1) + tuple
}

// appendCaseEvents adds many case events at once, in multi-row statements.
func appendCaseEvents(ctx context.Context, tx *sql.Tx, a Actor, now int64, events []caseEvent) error {
	for _, chunk := range chunks(len(events), 200) {
		args := make([]any, 0, 14*len(chunk))
		for _, i := range chunk {
			e := events[i]
			var detail sql.NullString
			if len(e.detail) > 0 {
				b, err := json.Marshal(e.detail)
				if err != nil {
					return err
				}
				detail = optional(string(b))
			}
			args = append(args, NewID(), e.caseID, e.typ, optional(e.from), optional(e.to), optional(e.reason), optional(e.runID), optional(e.gateID),
				optional(e.agentID), optional(a.UserID), optional(a.APIKeyID), channelOf(a), detail, now)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO case_events(id, case_id, type, from_status, to_status, reason, run_id, human_request_id, agent_id,
			user_id, api_key_id, channel, detail, created_at) VALUES `+placeholders(len(chunk), 14), args...); err != nil {
			return fmt.Errorf("case events: %w", err)
		}
	}
	return nil
}

// createCaseLabels finds or creates, once each, the labels the new cases carry. Labels
// are compared trimmed, as labelIDsTx stores them, so " x" and "x" are one label.
func (s *Store) createCaseLabels(ctx context.Context, tx *sql.Tx, queueID string, cs []NewCase) (map[LabelKV]string, error) {
	trim := func(l LabelKV) LabelKV {
		return LabelKV{Key: strings.TrimSpace(l.Key), Value: strings.TrimSpace(l.Value)}
	}
	var kv []LabelKV
	at := map[LabelKV]int{}
	for _, c := range cs {
		for _, l := range c.Labels {
			if _, ok := at[trim(l)]; !ok {
				at[trim(l)] = len(kv)
				kv = append(kv, trim(l))
			}
		}
	}
	ids := map[LabelKV]string{}
	if len(kv) == 0 {
		return ids, nil
	}
	found, err := s.labelIDsTx(ctx, tx, queueID, kv, true)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		for _, l := range c.Labels {
			ids[l] = found[at[trim(l)]]
		}
	}
	return ids, nil
}

// fillNewCaseLabels sets the labels of the cases just created from what the batch named,
// ordered as caseLabels orders them, reading only the labels' colours back.
func fillNewCaseLabels(ctx context.Context, tx *sql.Tx, queueID string, cs []NewCase, labelIDs map[LabelKV]string, out []Case) error {
	if len(labelIDs) == 0 {
		return nil
	}
	ids := make([]string, 0, len(labelIDs))
	for _, id := range labelIDs {
		ids = append(ids, id)
	}
	b, _ := json.Marshal(ids)
	rows, err := tx.QueryContext(ctx, "SELECT id, color_hue FROM queue_labels WHERE id IN (SELECT value FROM json_each(?))", string(b))
	if err != nil {
		return err
	}
	defer rows.Close()
	hues := map[string]int{}
	for rows.Next() {
		var id string
		var hue int
		if err := rows.Scan(&id, &hue); err != nil {
			return err
		}
		hues[id] = hue
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for i, nc := range cs {
		seen := map[LabelKV]bool{}
		for _, kv := range nc.Labels {
			if seen[kv] {
				continue
			}
			seen[kv] = true
			id := labelIDs[kv]
			out[i].Labels = append(out[i].Labels, Label{ID: id, QueueID: queueID, Key: kv.Key, Value: kv.Value, ColorHue: hues[id]})
		}
		slices.SortFunc(out[i].Labels, func(a, b Label) int { return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.Value, b.Value)) })
	}
	return nil
}

// CaseFilter selects cases of a queue; every set field narrows the selection.
type CaseFilter struct {
	// DisplayStatuses matches any of these display statuses; "claimed" means in_progress.
	DisplayStatuses []string
	// Priorities matches any of none, medium, high.
	Priorities []string
	// Search is full text over title and data: every word must occur (a trailing * makes
	// a word a prefix). Operators are not interpreted.
	Search      string
	CreatedFrom *time.Time
	UpdatedFrom *time.Time
	// Labels maps a label key to the values accepted for it: a case matches when, for
	// every key, it carries a label with that key and one of the values.
	Labels map[string][]string
}

// CaseQuery is a CaseFilter with its order and page.
type CaseQuery struct {
	CaseFilter
	// SortBy is created_at (default), updated_at or postponed_to.
	SortBy string
	Asc    bool
	Limit  int
	Offset int
}

// CaseSnippet is the part of a case's data around the first search match.
type CaseSnippet struct{ Before, Match, After string }

// CasePage is one page of ListCases.
type CasePage struct {
	Cases []Case
	Total int
	// Snippets holds, by case id, where the search matched the case's data.
	Snippets map[string]CaseSnippet
}

// ftsQuery turns what a person typed into an FTS5 query that cannot be a syntax error:
// each word becomes a quoted phrase (so AND, OR, NEAR, quotes, colons and parentheses
// are plain text), all of them required; a trailing * keeps a word a prefix. Words with
// no letter or digit would tokenize to nothing and are dropped. ok is false when nothing
// searchable remains.
func ftsQuery(search string) (q string, ok bool) {
	var phrases []string
	for _, w := range strings.FieldsFunc(search, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		prefix := strings.HasSuffix(w, "*")
		w = strings.TrimRight(w, "*")
		if !strings.ContainsFunc(w, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) || !utf8.ValidString(w) {
			continue
		}
		p := `"` + strings.ReplaceAll(w, `"`, `""`) + `"`
		if prefix {
			p += "*"
		}
		phrases = append(phrases, p)
	}
	return strings.Join(phrases, " "), len(phrases) > 0
}

var sortColumns = map[string]string{"": "c.created_at", "created_at": "c.created_at", "updated_at": "c.updated_at", "postponed_to": "c.postponed_to"}

// caseFilterWhere is the condition (on caseSelect's aliases c and r) that selects the
// cases of a queue matching f, and its arguments. Callers have checked that the queue is
// the team's (requireCaseQueue), and a queue's cases are its team's: repeating the team
// here would make every count read each case's row instead of the queue's index.
//
// all says the condition selects every match (a count, a bulk selection) rather than a
// page in the queue's order. With labels it then starts from the label's cases: the
// unary + keeps the planner from walking the whole queue's index and testing each case
// (without statistics it takes a queue for a few rows). A page does better walking the
// index in order, as it stops after a page's worth of matches.
func caseFilterWhere(queueID string, f CaseFilter, now int64, all bool) (string, []any, error) {
	queue := "c.queue_id = ?"
	if all && len(f.Labels) > 0 {
		queue = "+c.queue_id = ?"
	}
	where, args := []string{queue}, []any{queueID}
	if len(f.DisplayStatuses) > 0 {
		var alts []string
		for _, ds := range f.DisplayStatuses {
			if ds == "claimed" {
				ds = "in_progress"
			}
			cond, a, err := displayStatusWhere(ds, now)
			if err != nil {
				return "", nil, err
			}
			alts = append(alts, "("+cond+")")
			args = append(args, a...)
		}
		where = append(where, "("+strings.Join(alts, " OR ")+")")
	}
	if len(f.Priorities) > 0 {
		ranks := make([]int, 0, len(f.Priorities))
		for _, p := range f.Priorities {
			r, ok := PriorityRank(p)
			if !ok {
				return "", nil, invalid("priority %q: want none, medium or high", p)
			}
			ranks = append(ranks, r)
		}
		b, _ := json.Marshal(ranks)
		where = append(where, "c.priority IN (SELECT value FROM json_each(?))")
		args = append(args, string(b))
	}
	if strings.TrimSpace(f.Search) != "" {
		q, ok := ftsQuery(f.Search)
		if !ok {
			where = append(where, "0 = 1")
		} else {
			where = append(where, "c.rowid IN (SELECT rowid FROM cases_fts WHERE cases_fts MATCH ?)")
			args = append(args, q)
		}
	}
	if f.CreatedFrom != nil {
		where = append(where, "c.created_at >= ?")
		args = append(args, f.CreatedFrom.UnixMilli())
	}
	if f.UpdatedFrom != nil {
		where = append(where, "c.updated_at >= ?")
		args = append(args, f.UpdatedFrom.UnixMilli())
	}
	keys := make([]string, 0, len(f.Labels))
	for k := range f.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b, _ := json.Marshal(f.Labels[k])
		labels := "SELECT l.id FROM queue_labels l WHERE l.queue_id = ? AND l.key = ? AND l.value IN (SELECT value FROM json_each(?))"
		if all {
			// Uncorrelated: the label's cases, found through its index.
			where = append(where, "c.id IN (SELECT cl.case_id FROM case_labels cl WHERE cl.label_id IN ("+labels+"))")
		} else {
			// Correlated: tested case by case as the page is walked, stopping at its end.
			where = append(where, "EXISTS (SELECT 1 FROM case_labels cl WHERE cl.case_id = c.id AND cl.label_id IN ("+labels+"))")
		}
		args = append(args, queueID, k, string(b))
	}
	return strings.Join(where, " AND "), args, nil
}

// sqlQuery is a statement with its arguments.
type sqlQuery struct {
	text string
	args []any
}

// caseListSQL is what ListCases asks: how many cases of the queue match q, and the ids
// of q's page of them.
func caseListSQL(queueID string, q CaseQuery, now int64) (count, page sqlQuery, err error) {
	col, ok := sortColumns[q.SortBy]
	if !ok {
		return count, page, invalid("sort_by %q: want created_at, updated_at or postponed_to", q.SortBy)
	}
	// Only the display statuses look at the holding run: without them the count is the
	// queue's index alone.
	from := " FROM cases c"
	if len(q.DisplayStatuses) > 0 {
		from += " LEFT JOIN runs r ON r.id = c.claimed_by_run_id"
	}
	where, args, err := caseFilterWhere(queueID, q.CaseFilter, now, true)
	if err != nil {
		return count, page, err
	}
	count = sqlQuery{"SELECT count(*)" + from + " WHERE " + where, args}
	dir := " DESC"
	if q.Asc {
		dir = ""
	}
	// Ties (a batch shares its created_at) break on rowid, the order the cases were
	// inserted in: the queue's index (queue_id, created_at) carries it, so a page — even
	// a deep one — is found in the index without reading the rows it skips.
	order := " ORDER BY " + col + dir + ", c.rowid" + dir
	if col == "c.postponed_to" {
		// Cases never postponed sort after the postponed ones, whichever the direction.
		order = " ORDER BY " + col + " IS NULL, " + col + dir + ", c.rowid" + dir
	}
	where, args, _ = caseFilterWhere(queueID, q.CaseFilter, now, false)
	page = sqlQuery{"SELECT c.id" + from + " WHERE " + where + order + " LIMIT ? OFFSET ?", append(args, q.Limit, q.Offset)}
	return count, page, nil
}

// ListCases returns a page of a team's queue's cases matching q, how many match in all,
// and, when q searches, where each case's data matched.
func (s *Store) ListCases(ctx context.Context, team, queueID string, q CaseQuery) (CasePage, error) {
	page := CasePage{Cases: []Case{}, Snippets: map[string]CaseSnippet{}}
	if err := requireCaseQueue(ctx, s.r, team, queueID); err != nil {
		return page, err
	}
	now := s.now()
	count, pageIDs, err := caseListSQL(queueID, q, now.UnixMilli())
	if err != nil {
		return page, err
	}
	if err := s.r.QueryRowContext(ctx, count.text, count.args...).Scan(&page.Total); err != nil {
		return page, err
	}
	// First the page's ids, then those cases with their run and gate: the joins run for
	// the page only, not for every case an offset skips.
	ids, err := s.caseIDs(ctx, pageIDs.text, pageIDs.args...)
	if err != nil || len(ids) == 0 {
		return page, err
	}
	b, _ := json.Marshal(ids)
	rows, err := s.r.QueryContext(ctx, caseSelect+" WHERE c.id IN (SELECT value FROM json_each(?))", string(b))
	if err != nil {
		return page, err
	}
	defer rows.Close()
	byID := make(map[string]Case, len(ids))
	for rows.Next() {
		c, err := scanCase(rows, now)
		if err != nil {
			return page, err
		}
		c.Labels = []Label{}
		byID[c.ID] = c
	}
	if err := rows.Err(); err != nil {
		return page, err
	}
	for _, id := range ids {
		if c, ok := byID[id]; ok { // gone if deleted between the two reads
			page.Cases = append(page.Cases, c)
		}
	}
	labels, err := caseLabels(ctx, s.r, ids)
	if err != nil {
		return page, err
	}
	for i := range page.Cases {
		if l := labels[page.Cases[i].ID]; l != nil {
			page.Cases[i].Labels = l
		}
	}
	if fq, ok := ftsQuery(q.Search); ok && len(ids) > 0 {
		page.Snippets, err = s.caseSnippets(ctx, fq, ids)
	}
	return page, err
}

// caseIDs runs a query selecting case ids.
func (s *Store) caseIDs(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// Marks FTS5's snippet() puts around matched tokens: private-use characters, which real
// case data does not contain.
const snippetOpen, snippetClose = "\uE000", "\uE001"

// caseSnippets returns, for each of the given cases whose data matches the FTS query q,
// the words around the first match.
func (s *Store) caseSnippets(ctx context.Context, q string, ids []string) (map[string]CaseSnippet, error) {
	b, _ := json.Marshal(ids)
	// The page's rowids are given to the full-text index, which then looks only at them
	// rather than at every case matching the words.
	rows, err := s.r.QueryContext(ctx, `SELECT c.id, snippet(cases_fts, 1, ?, ?, '…', 24) FROM cases_fts JOIN cases c ON c.rowid = cases_fts.rowid
		WHERE cases_fts MATCH ? AND cases_fts.rowid IN (SELECT rowid FROM cases WHERE id IN (SELECT value FROM json_each(?)))`, snippetOpen, snippetClose, q, string(b))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]CaseSnippet{}
	for rows.Next() {
		var id string
		var snip sql.NullString
		if err := rows.Scan(&id, &snip); err != nil {
			return nil, err
		}
		before, rest, found := strings.Cut(snip.String, snippetOpen)
		if !found {
			continue // the match is in the title only
		}
		match, after, _ := strings.Cut(rest, snippetClose)
		strip := strings.NewReplacer(snippetOpen, "", snippetClose, "")
		out[id] = CaseSnippet{Before: before, Match: match, After: strip.Replace(after)}
	}
	return out, rows.Err()
}

// GetCase returns a team's case with its labels.
func (s *Store) GetCase(ctx context.Context, team, id string) (Case, error) {
	return s.getCase(ctx, s.r, team, id)
}

// HumanRequestTitles returns the titles of a team's gates by id (for case events).
func (s *Store) HumanRequestTitles(ctx context.Context, team string, ids []string) (map[string]string, error) {
	out := map[string]string{}
	if len(ids) == 0 {
		return out, nil
	}
	b, _ := json.Marshal(ids)
	rows, err := s.r.QueryContext(ctx, "SELECT id, title FROM human_requests WHERE team_id = ? AND id IN (SELECT value FROM json_each(?))", team, string(b))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, title string
		if err := rows.Scan(&id, &title); err != nil {
			return nil, err
		}
		out[id] = title
	}
	return out, rows.Err()
}

// heldError is the refusal to remove a case a run is working on.
func heldError(caseID, runID string) error {
	return conflict("case %s is in progress: run %s holds it; stop the run (POST /v2/runs/%s/stop) or wait for it to end, then retry", caseID, runID, runID)
}

// DeleteCase removes a team's case with its labels and history. A case a run holds is
// refused: the run would lose its work item mid-flight.
func (s *Store) DeleteCase(ctx context.Context, a Actor, id string) error {
	return s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		var queue, status string
		var run sql.NullString
		err := tx.QueryRowContext(ctx, "SELECT queue_id, status, claimed_by_run_id FROM cases WHERE id = ? AND team_id = ?", id, a.TeamID).Scan(&queue, &status, &run)
		if err == sql.ErrNoRows {
			return Target{}, notFound("case %s not found", id)
		}
		if err != nil {
			return Target{}, err
		}
		if run.Valid && status == "pending" {
			return Target{}, heldError(id, run.String)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM cases WHERE id = ?", id); err != nil {
			return Target{}, err
		}
		return Target{Type: "case", ID: id, Detail: map[string]any{"queue_id": queue}}, nil
	})
}

// ClearQueueCases deletes every case of a team's queue that no run holds, and reports
// how many it deleted and how many it left because a run holds them.
func (s *Store) ClearQueueCases(ctx context.Context, a Actor, queueID string) (deleted, skipped int, err error) {
	err = s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		if err := requireCaseQueue(ctx, tx, a.TeamID, queueID); err != nil {
			return Target{}, err
		}
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM cases WHERE queue_id = ? AND NOT "+notHeld, queueID).Scan(&skipped); err != nil {
			return Target{}, err
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM cases WHERE queue_id = ? AND "+notHeld, queueID)
		if err != nil {
			return Target{}, err
		}
		n, err := res.RowsAffected()
		deleted = int(n)
		return Target{Type: "queue", ID: queueID, Detail: map[string]any{"deleted": deleted, "skipped": skipped}}, err
	})
	return deleted, skipped, err
}

// CaseRun is a run that worked on a case, with what listCaseRuns shows about it.
type CaseRun struct {
	Run
	UserEmail *string
	UserName  *string
	// PendingGateTitle is the title of the run's open gate, if any.
	PendingGateTitle *string
}

// CaseRuns returns the runs of a team's case, newest first, at most limit.
func (s *Store) CaseRuns(ctx context.Context, team, caseID string, limit int) ([]CaseRun, error) {
	if err := requireCase(ctx, s.r, team, caseID); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, "SELECT "+runCols+`, u.email, u.name,
		(SELECT h.title FROM human_requests h WHERE h.run_id = r.id AND h.status = 'open' ORDER BY h.created_at LIMIT 1)`+runFrom+`
		LEFT JOIN users u ON u.id = r.user_id WHERE r.team_id = ? AND r.case_id = ? ORDER BY r.created_at DESC, r.id DESC LIMIT ?`, team, caseID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []CaseRun{}
	for rows.Next() {
		var cr CaseRun
		var email, name, gate sql.NullString
		r, err := scanRun(extraScanner{rows, []any{&email, &name, &gate}})
		if err != nil {
			return nil, err
		}
		cr.Run, cr.UserEmail, cr.UserName, cr.PendingGateTitle = r, strPtr(email), strPtr(name), strPtr(gate)
		out = append(out, cr)
	}
	return out, rows.Err()
}

// extraScanner scans a row's leading columns through a scan function that knows them
// and its trailing columns into extra.
type extraScanner struct {
	sc    scanner
	extra []any
}

func (e extraScanner) Scan(dest ...any) error { return e.sc.Scan(append(dest, e.extra...)...) }

func requireCase(ctx context.Context, q querier, team, caseID string) error {
	var n int
	if err := q.QueryRowContext(ctx, "SELECT count(*) FROM cases WHERE id = ? AND team_id = ?", caseID, team).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return notFound("case %s not found", caseID)
	}
	return nil
}

// RecentCaseRunMessages returns the last limit assistant texts and tool calls of a run of
// a team's case, oldest first.
func (s *Store) RecentCaseRunMessages(ctx context.Context, team, caseID, runID string, limit int) ([]Message, error) {
	if err := requireCase(ctx, s.r, team, caseID); err != nil {
		return nil, err
	}
	var n int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM runs WHERE id = ? AND team_id = ? AND case_id = ?", runID, team, caseID).Scan(&n); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, notFound("run %s not found on case %s", runID, caseID)
	}
	ms, err := s.queryMessages(ctx, "SELECT "+messageCols+` FROM run_messages WHERE run_id = ? AND role = 'assistant' AND type IN ('text', 'tool_call')
		ORDER BY seq DESC LIMIT ?`, runID, limit)
	slices.Reverse(ms)
	return ms, err
}
