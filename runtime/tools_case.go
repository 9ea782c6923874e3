package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"docket/queues"
	"docket/store"
)

// caseTools let a run work on its team's cases (DESIGN §5.2). Each is idempotent (the
// store finds a replayed decision already made), so a crash never decides a case twice.
func caseTools(st *store.Store) []*Tool {
	caseArg := `"case_id":{"type":"string","description":"The case's id"}`
	queueArg := `"queue":{"type":"string","description":"The queue's id or name"}`
	return []*Tool{
		{
			Name:        "add_cases",
			Description: "Add cases (work items) to a queue of your team; whoever consumes the queue picks them up.",
			Schema: `{"type":"object","required":["queue","cases"],"properties":{` + queueArg + `,"cases":{"type":"array","maxItems":100,"items":{"type":"object","required":["title"],
				"properties":{"title":{"type":"string"},"data":{"type":"string"},"priority":{"type":"string","enum":["none","medium","high"]}}}}}}`,
			Run: func(ctx context.Context, c *Call) (string, error) {
				queue, err := requireString(c.Args, "queue")
				if err != nil {
					return "", err
				}
				var cs []store.NewCase
				b, _ := json.Marshal(c.Args["cases"])
				if err := json.Unmarshal(b, &cs); err != nil || len(cs) == 0 {
					return "", fmt.Errorf(`argument "cases" must be a list of {"title": "...", "data": "...", "priority": "none|medium|high"}`)
				}
				for i := range cs {
					if cs[i].Priority == "" {
						cs[i].Priority = "none"
					}
				}
				ids, err := st.AddCasesOnce(ctx, c.Run.ID, c.IdempotencyKey, queue, cs)
				if err != nil {
					return "", err
				}
				out, err := json.Marshal(map[string]any{"added": len(ids), "case_ids": ids})
				return string(out), err
			},
		},
		{
			Name:        "list_cases",
			Description: "List cases of a queue, newest first, optionally by status, label or words they contain.",
			Schema: `{"type":"object","required":["queue"],"properties":{` + queueArg + `,
				"status":{"type":"string","enum":["pending","in_progress","needs_input","postponed","completed","failed"]},
				"label":{"type":"string","description":"key:value, or a bare value"},"search":{"type":"string"},
				"limit":{"type":"integer","minimum":1,"maximum":50,"description":"Default 20"}}}`,
			Run: func(ctx context.Context, c *Call) (string, error) {
				queue, err := requireString(c.Args, "queue")
				if err != nil {
					return "", err
				}
				team, queueID, err := st.QueueForRun(ctx, c.Run.ID, queue)
				if err != nil {
					return "", err
				}
				q := store.CaseQuery{Limit: 20, CaseFilter: store.CaseFilter{Search: argString(c.Args, "search")}}
				if n, ok := c.Args["limit"].(float64); ok && n >= 1 && n <= 50 {
					q.Limit = int(n)
				}
				if status := argString(c.Args, "status"); status != "" {
					q.DisplayStatuses = []string{status}
				}
				if l := argString(c.Args, "label"); l != "" {
					key, value, ok := strings.Cut(l, ":")
					if !ok {
						key, value = "", l
					}
					q.Labels = map[string][]string{key: {value}}
				}
				page, err := st.ListCases(ctx, team, queueID, q)
				if err != nil {
					return "", err
				}
				items := []map[string]any{}
				for _, k := range page.Cases {
					data := k.Data
					if r := []rune(data); len(r) > 500 {
						data = string(r[:500]) + "…"
					}
					items = append(items, map[string]any{"id": k.ID, "title": k.Title, "status": k.DisplayStatus, "priority": k.Priority, "data": data})
				}
				out, err := json.Marshal(map[string]any{"total": page.Total, "cases": items})
				return string(out), err
			},
		},
		{
			Name:        "claim_case",
			Description: "Take a pending case to work on it; nobody else will start on it while you hold it.",
			Schema:      `{"type":"object","required":["case_id"],"properties":{` + caseArg + `}}`,
			Run: func(ctx context.Context, c *Call) (string, error) {
				id, err := requireString(c.Args, "case_id")
				if err != nil {
					return "", err
				}
				if err := st.ClaimCase(ctx, c.Run.ID, id); err != nil {
					return "", err
				}
				return caseJSON(ctx, st, c.Run.ID, id)
			},
		},
		{
			Name:        "complete_case",
			Description: "Finish a case with its result. Call it once the work on the case is done.",
			Schema:      `{"type":"object","required":["case_id","result"],"properties":{` + caseArg + `,"result":{"type":"string","description":"What was done: the outcome people will read"}}}`,
			Run: func(ctx context.Context, c *Call) (string, error) {
				return decide(ctx, st, c, "result", false)
			},
		},
		{
			Name:        "fail_case",
			Description: "Give up on a case, saying why. It is not retried automatically; a person can reprocess it.",
			Schema:      `{"type":"object","required":["case_id","reason"],"properties":{` + caseArg + `,"reason":{"type":"string"}}}`,
			Run: func(ctx context.Context, c *Call) (string, error) {
				return decide(ctx, st, c, "reason", true)
			},
		},
		{
			Name:        "postpone_case",
			Description: "Put a case back in its queue until later; a new run picks it up then.",
			Schema:      `{"type":"object","required":["case_id","until"],"properties":{` + caseArg + `,"until":{"type":"string","description":"A span such as 2h, 1d or 1w, or a time such as 2026-12-01T09:00:00Z"}}}`,
			Run: func(ctx context.Context, c *Call) (string, error) {
				id, err := requireString(c.Args, "case_id")
				if err != nil {
					return "", err
				}
				raw, err := requireString(c.Args, "until")
				if err != nil {
					return "", err
				}
				until, err := queues.ParseUntil(raw, time.Now())
				if err != nil {
					return "", err
				}
				at, err := st.PostponeCase(ctx, c.Run.ID, id, until)
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("case %s is postponed until %s", id, at.Format(time.RFC3339)), nil
			},
		},
		{
			Name:        "update_case",
			Description: "Change a case's data or priority, add labels, or add a note to its history.",
			Schema: `{"type":"object","required":["case_id"],"properties":{` + caseArg + `,"data":{"type":"string"},
				"priority":{"type":"string","enum":["none","medium","high"]},
				"labels":{"type":"array","description":"Labels to add","items":{"type":"object","required":["value"],"properties":{"key":{"type":"string"},"value":{"type":"string"}}}},
				"note":{"type":"string","description":"A line for the case's history"}}}`,
			Run: func(ctx context.Context, c *Call) (string, error) {
				id, err := requireString(c.Args, "case_id")
				if err != nil {
					return "", err
				}
				u := store.CaseUpdate{Note: argString(c.Args, "note")}
				if v, ok := c.Args["data"].(string); ok {
					u.Data = &v
				}
				if v, ok := c.Args["priority"].(string); ok {
					u.Priority = &v
				}
				if raw, ok := c.Args["labels"]; ok {
					b, _ := json.Marshal(raw)
					if err := json.Unmarshal(b, &u.Labels); err != nil {
						return "", fmt.Errorf(`argument "labels" must be a list of {"key": "...", "value": "..."}`)
					}
				}
				if err := st.UpdateCase(ctx, c.Run.ID, id, u); err != nil {
					return "", err
				}
				return caseJSON(ctx, st, c.Run.ID, id)
			},
		},
	}
}

func decide(ctx context.Context, st *store.Store, c *Call, field string, failed bool) (string, error) {
	id, err := requireString(c.Args, "case_id")
	if err != nil {
		return "", err
	}
	text, err := requireString(c.Args, field)
	if err != nil {
		return "", err
	}
	if err := st.DecideCase(ctx, c.Run.ID, id, text, failed); err != nil {
		return "", err
	}
	if failed {
		return fmt.Sprintf("case %s is failed: %s", id, text), nil
	}
	return fmt.Sprintf("case %s is completed", id), nil
}

// caseJSON is a case as the tools show it to the model.
func caseJSON(ctx context.Context, st *store.Store, runID, id string) (string, error) {
	k, err := st.CaseForRun(ctx, runID, id)
	if err != nil {
		return "", err
	}
	labels := []string{}
	for _, l := range k.Labels {
		labels = append(labels, l.Key+":"+l.Value)
	}
	b, err := json.Marshal(map[string]any{"id": k.ID, "queue_id": k.QueueID, "title": k.Title, "data": k.Data, "priority": k.Priority,
		"status": k.DisplayStatus, "attempt": k.Attempt, "labels": labels})
	return string(b), err
}
