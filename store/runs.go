package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Run statuses (DESIGN §4): pending → running → (waiting ↔ running)* → completed | failed | stopped.
const (
	RunPending   = "pending"
	RunRunning   = "running"
	RunWaiting   = "waiting"
	RunCompleted = "completed"
	RunFailed    = "failed"
	RunStopped   = "stopped"
)

// Run is a Job: one execution of an agent's pinned build.
type Run struct {
	ID                string
	TeamID            string
	AgentID           string
	AgentName         string
	BuildID           string
	RunNumber         int
	Status            string
	Source            string
	Title             string
	SandboxID         *string
	CaseID            *string
	ParentRunID       *string
	HandoverFromRunID *string
	WebhookURL        string
	Error             *string
	UserID            *string
	APIKeyID          *string
	Attempt           int
	ToolMode          *string
	PromptTokens      int64
	OutputTokens      int64
	ModelMs           int64
	// Model is what the model reported, summed over the run's turns.
	Model        ModelUsage
	UserMessages int
	CreatedAt    time.Time
	UpdatedAt    time.Time
	StartedAt    *time.Time
	CompletedAt  *time.Time
}

// Ended reports whether the run is in a final state (it may still be resumed by a message).
func (r Run) Ended() bool {
	return r.Status == RunCompleted || r.Status == RunFailed || r.Status == RunStopped
}

// NewRun is what StartRun needs.
type NewRun struct {
	AgentID    string
	Message    string
	Source     string
	WebhookURL string
	SandboxID  *string
	CaseID     *string
	ParentRun  *string
	Handover   *string
	Title      string
}

const runCols = `r.id, r.team_id, r.agent_id, a.name, r.build_id, r.run_number, r.status, r.source, r.title, r.sandbox_id, r.case_id,
	r.parent_run_id, r.handover_from_run_id, r.webhook_url, r.error, r.user_id, r.api_key_id, r.attempt, r.tool_mode,
	r.prompt_tokens, r.output_tokens, r.model_ms,
	r.model_turns, r.total_duration_ms, r.load_duration_ms, r.prompt_eval_duration_ms, r.eval_duration_ms,
	(SELECT count(*) FROM run_messages m WHERE m.run_id = r.id AND m.role = 'user'),
	r.created_at, r.updated_at, r.started_at, r.completed_at`

const runFrom = " FROM runs r JOIN agents a ON a.id = r.agent_id"

func scanRun(sc scanner) (Run, error) {
	var r Run
	var sandbox, caseID, parent, handover, errText, user, key, mode sql.NullString
	var created, updated int64
	var started, completed sql.NullInt64
	err := sc.Scan(&r.ID, &r.TeamID, &r.AgentID, &r.AgentName, &r.BuildID, &r.RunNumber, &r.Status, &r.Source, &r.Title, &sandbox, &caseID,
		&parent, &handover, &r.WebhookURL, &errText, &user, &key, &r.Attempt, &mode, &r.PromptTokens, &r.OutputTokens, &r.ModelMs,
		&r.Model.Turns, &r.Model.TotalMs, &r.Model.LoadMs, &r.Model.PromptEvalMs, &r.Model.EvalMs,
		&r.UserMessages, &created, &updated, &started, &completed)
	if err != nil {
		return Run{}, err
	}
	r.SandboxID, r.CaseID, r.ParentRunID, r.HandoverFromRunID = strPtr(sandbox), strPtr(caseID), strPtr(parent), strPtr(handover)
	r.Error, r.UserID, r.APIKeyID, r.ToolMode = strPtr(errText), strPtr(user), strPtr(key), strPtr(mode)
	r.CreatedAt, r.UpdatedAt, r.StartedAt, r.CompletedAt = Time(created), Time(updated), timePtr(started), timePtr(completed)
	return r, nil
}

func getRun(ctx context.Context, q querier, team, id string) (Run, error) {
	r, err := scanRun(q.QueryRowContext(ctx, "SELECT "+runCols+runFrom+" WHERE r.id = ? AND r.team_id = ?", id, team))
	if err == sql.ErrNoRows {
		return Run{}, notFound("run %s not found", id)
	}
	return r, err
}

// GetRun returns a team's run.
func (s *Store) GetRun(ctx context.Context, team, id string) (Run, error) {
	return getRun(ctx, s.r, team, id)
}

// RunByID returns a run whatever its team; the executor uses it after a claim.
func (s *Store) RunByID(ctx context.Context, id string) (Run, error) {
	r, err := scanRun(s.r.QueryRowContext(ctx, "SELECT "+runCols+runFrom+" WHERE r.id = ?", id))
	if err == sql.ErrNoRows {
		return Run{}, notFound("run %s not found", id)
	}
	return r, err
}

// StartRun creates a pending run of the agent's live build, with the first user message
// when one is given. The build is frozen in the same transaction: from now on it can no
// longer change.
func (s *Store) StartRun(ctx context.Context, a Actor, nr NewRun) (Run, error) {
	var id string
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		var name string
		var live sql.NullString
		err := tx.QueryRowContext(ctx, "SELECT name, live_build_id FROM agents WHERE id = ? AND team_id = ? AND deleted_at IS NULL",
			nr.AgentID, a.TeamID).Scan(&name, &live)
		if err == sql.ErrNoRows {
			return Target{}, notFound("assignment %s not found", nr.AgentID)
		}
		if err != nil {
			return Target{}, err
		}
		if !live.Valid {
			return Target{}, conflict("assignment %s has no live setup to run: create one (POST /v2/agents/%s/revisions) and promote it", nr.AgentID, nr.AgentID)
		}
		now := s.nowMs()
		if nr.SandboxID != nil {
			sb, err := sandboxInTeam(ctx, tx, a.TeamID, *nr.SandboxID)
			if err != nil {
				return Target{}, err
			}
			if sb.ExpiresAt.UnixMilli() <= now {
				return Target{}, invalid("sandbox_id: sandbox %s expired at %s; create a new sandbox", sb.ID, sb.ExpiresAt.Format(time.RFC3339))
			}
		}
		if id, err = insertRun(ctx, tx, a.TeamID, nr.AgentID, name, live.String, nr, a.UserID, a.APIKeyID, now); err != nil {
			return Target{}, err
		}
		return Target{Type: "run", ID: id, Detail: map[string]any{"agent_id": nr.AgentID, "build_id": live.String, "source": nr.Source}}, nil
	})
	if err != nil {
		return Run{}, err
	}
	return s.RunByID(ctx, id)
}

// insertRun creates a pending run of an agent's build with its first message, freezes
// the build and notes the agent's last run, inside tx.
func insertRun(ctx context.Context, tx *sql.Tx, team, agentID, agentName, buildID string, nr NewRun, userID, keyID string, now int64) (string, error) {
	return insertRunWithID(ctx, tx, NewID(), team, agentID, agentName, buildID, nr, userID, keyID, now)
}

// insertRunWithID is insertRun for a run whose id was chosen before (the dispatcher
// claims the case for the run it is about to create).
func insertRunWithID(ctx context.Context, tx *sql.Tx, id, team, agentID, agentName, buildID string, nr NewRun, userID, keyID string, now int64) (string, error) {
	title := nr.Title
	if title == "" {
		title = firstLine(nr.Message, 120)
	}
	if title == "" {
		title = agentName
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO runs(id, team_id, agent_id, build_id, run_number, status, source, title, sandbox_id, case_id,
		parent_run_id, handover_from_run_id, webhook_url, user_id, api_key_id, run_after, created_at, updated_at)
		VALUES (?, ?, ?, ?, (SELECT coalesce(max(run_number), 0) + 1 FROM runs WHERE agent_id = ?), 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, team, agentID, buildID, agentID, nr.Source, title, nullStr(nr.SandboxID), nullStr(nr.CaseID),
		nullStr(nr.ParentRun), nullStr(nr.Handover), nr.WebhookURL, optional(userID), optional(keyID), now, now, now)
	if err != nil {
		return "", fmt.Errorf("insert run: %w", err)
	}
	if nr.Message != "" {
		if _, err := insertMessage(ctx, tx, id, now, Message{Type: "text", Role: "user", Text: &nr.Message}); err != nil {
			return "", err
		}
	}
	if _, err := tx.ExecContext(ctx, "UPDATE builds SET first_run_at = coalesce(first_run_at, ?) WHERE id = ?", now, buildID); err != nil {
		return "", err
	}
	_, err = tx.ExecContext(ctx, "UPDATE agents SET last_run_at = ? WHERE id = ?", now, agentID)
	return id, err
}

func firstLine(s string, max int) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

// RunFilter narrows ListRuns.
type RunFilter struct {
	Status  string
	AgentID string
	Source  string
	CaseID  string
	Since   *time.Time
	Until   *time.Time
	Asc     bool
	Limit   int
	Offset  int
}

// ListRuns returns a team's runs, newest first unless Asc, and how many match in all.
func (s *Store) ListRuns(ctx context.Context, team string, f RunFilter) ([]Run, int, error) {
	where, args := []string{"r.team_id = ?"}, []any{team}
	for _, c := range []struct{ col, v string }{{"r.status", f.Status}, {"r.agent_id", f.AgentID}, {"r.source", f.Source}, {"r.case_id", f.CaseID}} {
		if c.v != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	if f.Since != nil {
		where = append(where, "r.created_at >= ?")
		args = append(args, f.Since.UnixMilli())
	}
	if f.Until != nil {
		where = append(where, "r.created_at < ?")
		args = append(args, f.Until.UnixMilli())
	}
	cond := " WHERE " + strings.Join(where, " AND ")
	var total int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM runs r"+cond, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	order := " ORDER BY r.created_at DESC, r.id DESC"
	if f.Asc {
		order = " ORDER BY r.created_at, r.id"
	}
	rows, err := s.r.QueryContext(ctx, "SELECT "+runCols+runFrom+cond+order+" LIMIT ? OFFSET ?", append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := []Run{}
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, r)
	}
	return out, total, rows.Err()
}

// ClaimRun takes the next runnable run for owner in one statement: a pending run that is
// due, or a running one whose executor stopped renewing its lease (a crash). It returns
// nil when there is nothing to do.
func (s *Store) ClaimRun(ctx context.Context, owner string, lease time.Duration) (*Run, error) {
	now := s.nowMs()
	var id string
	err := s.w.QueryRowContext(ctx, `UPDATE runs SET status = 'running', lease_owner = ?, lease_until = ?, attempt = attempt + 1,
		started_at = coalesce(started_at, ?), updated_at = ?
		WHERE id = (SELECT id FROM runs WHERE (status = 'pending' AND run_after <= ?) OR (status = 'running' AND lease_until < ?)
		            ORDER BY run_after, id LIMIT 1)
		RETURNING id`, owner, now+lease.Milliseconds(), now, now, now, now).Scan(&id)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim run: %w", err)
	}
	r, err := s.RunByID(ctx, id)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// NextRunDue is when ClaimRun could next find work without a wake-up: the earliest due
// pending run or expiring lease. ok is false when no run is pending or running.
func (s *Store) NextRunDue(ctx context.Context) (time.Time, bool, error) {
	var due sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT min(t) FROM (
		SELECT min(run_after) AS t FROM runs WHERE status = 'pending'
		UNION ALL SELECT min(lease_until) FROM runs WHERE status = 'running')`).Scan(&due)
	if err != nil || !due.Valid {
		return time.Time{}, false, err
	}
	return Time(due.Int64), true, nil
}

// RenewLease extends owner's lease on a running run; ErrLeaseLost when it is no longer
// owner's (stopped, or taken over after the lease expired).
func (s *Store) RenewLease(ctx context.Context, id, owner string, lease time.Duration) error {
	now := s.nowMs()
	res, err := s.w.ExecContext(ctx, "UPDATE runs SET lease_until = ? WHERE id = ? AND status = 'running' AND lease_owner = ?", now+lease.Milliseconds(), id, owner)
	if err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// leased runs fn in a write transaction that first proves owner still holds the run.
// Every write an executor makes goes through it, so a stopped or rescued run can never
// be written by the executor that lost it.
func (s *Store) leased(ctx context.Context, runID, owner string, fn func(tx *sql.Tx, r leasedRun) error) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var r leasedRun
		var status string
		var lo sql.NullString
		err := tx.QueryRowContext(ctx, "SELECT status, lease_owner, team_id, agent_id, build_id, webhook_url, case_id FROM runs WHERE id = ?", runID).
			Scan(&status, &lo, &r.team, &r.agent, &r.build, &r.webhookURL, &r.caseID)
		if err != nil {
			return fmt.Errorf("load run %s: %w", runID, err)
		}
		if status != RunRunning || lo.String != owner {
			return ErrLeaseLost
		}
		r.id = runID
		return fn(tx, r)
	})
}

type leasedRun struct {
	id, team, agent, build, webhookURL string
	caseID                             sql.NullString
}

func (r leasedRun) event(name, status string, now int64) WebhookEvent {
	return WebhookEvent{Event: name, RunID: r.id, AgentID: r.agent, Status: status, CaseID: r.caseID.String, Time: Time(now)}
}

// FailRun ends owner's run as failed with a message a person can act on. infra marks a
// failure of the machinery (model backend down, an internal error) rather than of the
// work: the run's cases are then retried with backoff.
func (s *Store) FailRun(ctx context.Context, runID, owner, reason string, infra bool) error {
	return s.leased(ctx, runID, owner, func(tx *sql.Tx, r leasedRun) error {
		return s.endRun(ctx, tx, r, RunFailed, reason, infra)
	})
}

// endRun moves a run to a final status, settles the cases it held and queues its
// webhook, inside tx.
func (s *Store) endRun(ctx context.Context, tx *sql.Tx, r leasedRun, status, reason string, infra bool) error {
	now := s.nowMs()
	_, err := tx.ExecContext(ctx, `UPDATE runs SET status = ?, error = ?, lease_owner = NULL, lease_until = NULL, completed_at = ?, updated_at = ?
		WHERE id = ?`, status, optional(reason), now, now, r.id)
	if err != nil {
		return fmt.Errorf("end run: %w", err)
	}
	if err := s.settleCases(ctx, tx, r, status, reason, infra, now); err != nil {
		return err
	}
	event := map[string]string{RunCompleted: "run_completed", RunFailed: "run_failed", RunStopped: "run_interrupted"}[status]
	return s.enqueueWebhooks(ctx, tx, r.team, r.webhookURL, r.event(event, status, now))
}

// ReleaseRun hands a run back to the queue (pending, due after delay) without ending it:
// an executor shutting down mid-run, or a retry after a model error.
func (s *Store) ReleaseRun(ctx context.Context, runID, owner string, delay time.Duration) error {
	err := s.leased(ctx, runID, owner, func(tx *sql.Tx, _ leasedRun) error {
		now := s.nowMs()
		_, err := tx.ExecContext(ctx, "UPDATE runs SET status = 'pending', lease_owner = NULL, lease_until = NULL, run_after = ?, updated_at = ? WHERE id = ?",
			now+delay.Milliseconds(), now, runID)
		return err
	})
	if errors.Is(err, ErrLeaseLost) {
		return nil
	}
	return err
}

// StopRun ends a pending, running or waiting run as stopped: open gates are superseded,
// run_interrupted is queued for the webhooks. An executor driving it finds its lease gone
// at its next write and drops the run.
func (s *Store) StopRun(ctx context.Context, a Actor, id string) (Run, error) {
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		r, err := getRun(ctx, tx, a.TeamID, id)
		if err != nil {
			return Target{}, err
		}
		if r.Ended() {
			return Target{}, conflict("run %s has already ended (%s): there is nothing to stop", id, r.Status)
		}
		now := s.nowMs()
		if _, err := tx.ExecContext(ctx, "UPDATE human_requests SET status = 'superseded', decided_at = ? WHERE run_id = ? AND status = 'open'", now, id); err != nil {
			return Target{}, err
		}
		lr := leasedRun{id: id, team: r.TeamID, agent: r.AgentID, build: r.BuildID, webhookURL: r.WebhookURL, caseID: nullStr(r.CaseID)}
		if err := s.endRun(ctx, tx, lr, RunStopped, "stopped by "+actorName(ctx, tx, a), false); err != nil {
			return Target{}, err
		}
		return Target{Type: "run", ID: id, Detail: map[string]any{"from": r.Status}}, nil
	})
	if err != nil {
		return Run{}, err
	}
	return s.GetRun(ctx, a.TeamID, id)
}

// PostRunMessage adds a person's message to a waiting or ended run and makes it pending
// again. On a waiting run the open gate is superseded and the calls it held are answered
// "not executed", so the model sees the message instead.
func (s *Store) PostRunMessage(ctx context.Context, a Actor, runID, text string) (Message, error) {
	var m Message
	err := s.mutate(ctx, a, func(tx *sql.Tx) (Target, error) {
		r, err := getRun(ctx, tx, a.TeamID, runID)
		if err != nil {
			return Target{}, err
		}
		if r.Status == RunPending || r.Status == RunRunning {
			return Target{}, conflict("run %s is %s: wait until it waits or ends, or stop it first", runID, r.Status)
		}
		now := s.nowMs()
		if r.Status == RunWaiting {
			if _, err := tx.ExecContext(ctx, "UPDATE human_requests SET status = 'superseded', decided_at = ? WHERE run_id = ? AND status = 'open'", now, runID); err != nil {
				return Target{}, err
			}
			who := actorName(ctx, tx, a)
			if err := answerOpenCalls(ctx, tx, runID, now, "not executed: superseded by a new message from "+who); err != nil {
				return Target{}, err
			}
		}
		if m, err = insertMessage(ctx, tx, runID, now, Message{Type: "text", Role: "user", Text: &text}); err != nil {
			return Target{}, err
		}
		if err := makePending(ctx, tx, runID, now); err != nil {
			return Target{}, err
		}
		return Target{Type: "run", ID: runID, Detail: map[string]any{"from": r.Status, "message_id": m.ID}}, nil
	})
	return m, err
}

// makePending puts a run back in the queue, due now, clearing an earlier ending.
func makePending(ctx context.Context, tx *sql.Tx, runID string, now int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE runs SET status = 'pending', run_after = ?, error = NULL, completed_at = NULL,
		lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?`, now, now, runID)
	return err
}

// actorName is how a decision's author is shown to the model and people: the user's
// email, else the API key's name.
func actorName(ctx context.Context, tx *sql.Tx, a Actor) string {
	if a.UserID != "" {
		var email string
		if tx.QueryRowContext(ctx, "SELECT email FROM users WHERE id = ?", a.UserID).Scan(&email) == nil {
			return email
		}
	}
	if a.APIKeyName != "" {
		return "API key " + a.APIKeyName
	}
	return "docket"
}

// RecoverRuns returns every run left 'running' to pending, due now. Only `docket serve`
// (which holds the data dir's lock) calls it at start-up, when no executor can own them.
func (s *Store) RecoverRuns(ctx context.Context) (int, error) {
	now := s.nowMs()
	res, err := s.w.ExecContext(ctx, "UPDATE runs SET status = 'pending', lease_owner = NULL, lease_until = NULL, run_after = ?, updated_at = ? WHERE status = 'running'", now, now)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// RunCounts is how many runs are in each status, across teams (for /metrics).
func (s *Store) RunCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT status, count(*) FROM runs GROUP BY status")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

// TeamRunCounts is how many of a team's runs are in each status, and how many failed
// since the given time (the dashboard's "recent failures").
func (s *Store) TeamRunCounts(ctx context.Context, team string, failedSince time.Time) (byStatus map[string]int, failedRecently int, err error) {
	rows, err := s.r.QueryContext(ctx, "SELECT status, count(*) FROM runs WHERE team_id = ? GROUP BY status", team)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	byStatus = map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, 0, err
		}
		byStatus[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	err = s.r.QueryRowContext(ctx, "SELECT count(*) FROM runs WHERE team_id = ? AND status = 'failed' AND updated_at >= ?",
		team, failedSince.UnixMilli()).Scan(&failedRecently)
	return byStatus, failedRecently, err
}
