package web_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"docket/internal/testkit"
	"docket/store"
)

// labelsWorld is a world with a queue of the team's, one of the other team's, and a
// case in each.
type labelsWorld struct {
	*world
	queue, kase           string
	otherQueue, otherCase string
}

func newLabelsWorld(t *testing.T) *labelsWorld {
	t.Helper()
	w := newWorld(t, testkit.Options{})
	lw := &labelsWorld{world: w}
	lw.queue = apiCreateQueue(t, w.s, w.team, w.member, "Labelled")
	lw.kase = seedCase(t, w.s, w.team, lw.queue, seededCase{})
	lw.otherQueue = apiCreateQueue(t, w.s, w.otherTeam, w.otherKey, "Theirs")
	lw.otherCase = seedCase(t, w.s, w.otherTeam, lw.otherQueue, seededCase{})
	return lw
}

func (lw *labelsWorld) createLabel(t *testing.T, key, value string) string {
	t.Helper()
	r := lw.s.Do(t, "POST", "/v2/queues/"+lw.queue+"/labels", lw.member, map[string]any{"key": key, "value": value})
	if r.Status != 200 {
		t.Fatalf("create label %s:%s: %d %s", key, value, r.Status, r.Body)
	}
	return field(t, r.JSON(t), "label", "id").(string)
}

// labelsOf decodes a {labels:[…]} body, requiring exactly the keys each item should have.
func labelsOf(t *testing.T, r *testkit.Response, itemKeys ...string) []map[string]any {
	t.Helper()
	m := r.JSON(t)
	wantKeys(t, "labels body", m, "labels")
	var out []map[string]any
	for _, l := range m["labels"].([]any) {
		lm := l.(map[string]any)
		wantKeys(t, "label", lm, itemKeys...)
		out = append(out, lm)
	}
	return out
}

func labelNames(ls []map[string]any) string {
	var names []string
	for _, l := range ls {
		names = append(names, fmt.Sprintf("%v:%v", l["key"], l["value"]))
	}
	return strings.Join(names, ",")
}

// caseEvents returns a case's history entries of type typ.
func caseEvents(t *testing.T, s *testkit.Server, kase, typ string) []store.CaseEvent {
	t.Helper()
	all, err := s.Store.CaseEvents(t.Context(), kase)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.CaseEvent
	for _, e := range all {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// eventLabels are the key:value names of the labels an event records.
func eventLabels(t *testing.T, e store.CaseEvent) string {
	t.Helper()
	var d struct {
		Labels []struct{ ID, Key, Value string }
	}
	if err := json.Unmarshal(e.Detail, &d); err != nil {
		t.Fatalf("event detail %s: %v", e.Detail, err)
	}
	var names []string
	for _, l := range d.Labels {
		names = append(names, l.Key+":"+l.Value)
	}
	return strings.Join(names, ",")
}

var (
	queueLabelKeys = []string{"id", "key", "value", "color_hue", "case_count"}
	caseLabelKeys  = []string{"id", "key", "value", "color_hue"}
)

func TestCreateQueueLabel(t *testing.T) {
	lw := newLabelsWorld(t)
	s := lw.s
	path := "/v2/queues/" + lw.queue + "/labels"
	scenarios := []scenario{
		{name: "200 with key, value and colour", method: "POST", path: path, key: lw.member, body: map[string]any{"key": "customer", "value": "Acme", "color_hue": 120}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "createQueueLabel body", m, "label")
				l := m["label"].(map[string]any)
				wantKeys(t, "label", l, queueLabelKeys...)
				if l["key"] != "customer" || l["value"] != "Acme" || l["color_hue"] != float64(120) || l["case_count"] != float64(0) {
					t.Fatalf("label = %v", l)
				}
				wantAudited(t, s, lw.team, "createQueueLabel", l["id"].(string), keyID(t, s, lw.member), "success")
			}},
		{name: "200 key defaults to empty; a colour is chosen", method: "POST", path: path, key: lw.member, body: map[string]any{"value": " urgent "}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				l := field(t, r.JSON(t), "label").(map[string]any)
				if l["key"] != "" || l["value"] != "urgent" {
					t.Fatalf("label = %v", l)
				}
				if h := l["color_hue"].(float64); h < 0 || h > 360 {
					t.Fatalf("color_hue = %v", h)
				}
			}},
		{name: "409 the same key and value", method: "POST", path: path, key: lw.member, body: map[string]any{"key": "customer", "value": "Acme"}, wantStatus: 409,
			wantError: "conflict", wantContains: []string{"customer:Acme"}},
		{name: "200 the same value under another key", method: "POST", path: path, key: lw.member, body: map[string]any{"key": "supplier", "value": "Acme"}, wantStatus: 200},
		badRequest("400 value missing", "POST", path, lw.member, map[string]any{"key": "k"}, "value"),
		badRequest("400 value empty", "POST", path, lw.member, map[string]any{"value": ""}, "value"),
		badRequest("400 value blank", "POST", path, lw.member, map[string]any{"value": "  "}, "value"),
		badRequest("400 value too long", "POST", path, lw.member, map[string]any{"value": strings.Repeat("v", 201)}, "value"),
		badRequest("400 key too long", "POST", path, lw.member, map[string]any{"key": strings.Repeat("k", 101), "value": "v"}, "key"),
		badRequest("400 colour out of range", "POST", path, lw.member, map[string]any{"value": "v", "color_hue": 361}, "color_hue"),
		badRequest("400 unknown field", "POST", path, lw.member, map[string]any{"value": "v", "colour": "red"}, "colour"),
		badRequest("400 malformed queue id", "POST", "/v2/queues/q1/labels", lw.member, map[string]any{"value": "v"}, "queue_id"),
		forbidden("403 viewer", "POST", path, lw.viewer, map[string]any{"value": "v"}, "createQueueLabel"),
		notFound("404 another team's queue", "POST", "/v2/queues/"+lw.otherQueue+"/labels", lw.owner, map[string]any{"value": "v"}),
		notFound("404 random queue", "POST", "/v2/queues/"+randomID()+"/labels", lw.owner, map[string]any{"value": "v"}),
	}
	scenarios = append(scenarios, unauthenticated("POST", path, map[string]any{"value": "v"})...)
	runScenarios(t, s, scenarios)
	if n := countRows(t, s, "SELECT count(*) FROM queue_labels"); n != 3 {
		t.Fatalf("labels stored = %d, want 3 (refused creates made none)", n)
	}
}

func TestListQueueLabels(t *testing.T) {
	lw := newLabelsWorld(t)
	s := lw.s
	second := seedCase(t, s, lw.team, lw.queue, seededCase{})
	for _, c := range []string{lw.kase, second} {
		if r := s.Do(t, "POST", "/v2/queues/"+lw.queue+"/cases/"+c+"/labels", lw.member, map[string]any{"labels": []any{map[string]any{"value": "urgent"}}}); r.Status != 200 {
			t.Fatalf("assign: %d %s", r.Status, r.Body)
		}
	}
	lw.createLabel(t, "customer", "Acme")
	lw.createLabel(t, "customer", "Bolt")
	if r := s.Do(t, "POST", "/v2/queues/"+lw.otherQueue+"/labels", lw.otherKey, map[string]any{"value": "theirs"}); r.Status != 200 {
		t.Fatalf("their label: %d %s", r.Status, r.Body)
	}
	path := "/v2/queues/" + lw.queue + "/labels"
	scenarios := []scenario{
		{name: "200 by key and value with case counts", method: "GET", path: path, key: lw.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				ls := labelsOf(t, r, queueLabelKeys...)
				if labelNames(ls) != ":urgent,customer:Acme,customer:Bolt" {
					t.Fatalf("labels = %s (the other team's must not show)", labelNames(ls))
				}
				if ls[0]["case_count"] != float64(2) || ls[1]["case_count"] != float64(0) {
					t.Fatalf("case counts = %v, %v", ls[0]["case_count"], ls[1]["case_count"])
				}
			}},
		{name: "200 a page", method: "GET", path: path + "?limit=1&offset=1", key: lw.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if ls := labelsOf(t, r, queueLabelKeys...); labelNames(ls) != "customer:Acme" {
					t.Fatalf("page = %s", labelNames(ls))
				}
			}},
		{name: "200 up to 1000 at once", method: "GET", path: path + "?limit=1000", key: lw.viewer, wantStatus: 200},
		badRequest("400 limit over 1000", "GET", path+"?limit=1001", lw.viewer, nil, "limit"),
		badRequest("400 limit 0", "GET", path+"?limit=0", lw.viewer, nil, "limit"),
		badRequest("400 malformed queue id", "GET", "/v2/queues/q1/labels", lw.viewer, nil, "queue_id"),
		notFound("404 another team's queue", "GET", "/v2/queues/"+lw.otherQueue+"/labels", lw.owner, nil),
		notFound("404 random queue", "GET", "/v2/queues/"+randomID()+"/labels", lw.owner, nil),
	}
	scenarios = append(scenarios, unauthenticated("GET", path, nil)...)
	runScenarios(t, s, scenarios)
}

func TestUpdateQueueLabel(t *testing.T) {
	lw := newLabelsWorld(t)
	s := lw.s
	label := lw.createLabel(t, "customer", "Acme")
	lw.createLabel(t, "customer", "Bolt")
	otherQueue := apiCreateQueue(t, s, lw.team, lw.member, "Second")
	r := s.Do(t, "POST", "/v2/queues/"+otherQueue+"/labels", lw.member, map[string]any{"value": "elsewhere"})
	if r.Status != 200 {
		t.Fatalf("label in second queue: %d %s", r.Status, r.Body)
	}
	elsewhere := field(t, r.JSON(t), "label", "id").(string)
	if r := s.Do(t, "POST", "/v2/queues/"+lw.queue+"/cases/"+lw.kase+"/labels", lw.member, map[string]any{"labels": []any{map[string]any{"key": "customer", "value": "Acme"}}}); r.Status != 200 {
		t.Fatalf("assign: %d %s", r.Status, r.Body)
	}
	path := "/v2/queues/" + lw.queue + "/labels/" + label
	scenarios := []scenario{
		{name: "200 renames it on every case", method: "PATCH", path: path, key: lw.member, body: map[string]any{"key": "client", "value": "Acme Ltd", "color_hue": 10}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "updateQueueLabel body", m, "label")
				l := m["label"].(map[string]any)
				if l["id"] != label || l["key"] != "client" || l["value"] != "Acme Ltd" || l["color_hue"] != float64(10) || l["case_count"] != float64(1) {
					t.Fatalf("label = %v", l)
				}
				on := labelsOf(t, s.Do(t, "GET", "/v2/queues/"+lw.queue+"/cases/"+lw.kase+"/labels", lw.viewer, nil), caseLabelKeys...)
				if labelNames(on) != "client:Acme Ltd" {
					t.Fatalf("case labels = %s", labelNames(on))
				}
				wantAudited(t, s, lw.team, "updateQueueLabel", label, keyID(t, s, lw.member), "success")
			}},
		{name: "200 only the colour", method: "PATCH", path: path, key: lw.member, body: map[string]any{"color_hue": 300}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if l := field(t, r.JSON(t), "label").(map[string]any); l["value"] != "Acme Ltd" || l["key"] != "client" || l["color_hue"] != float64(300) {
					t.Fatalf("label = %v", l)
				}
			}},
		{name: "409 another label's key and value", method: "PATCH", path: path, key: lw.member, body: map[string]any{"key": "customer", "value": "Bolt"}, wantStatus: 409,
			wantError: "conflict", wantContains: []string{"customer:Bolt"}},
		badRequest("400 value empty", "PATCH", path, lw.member, map[string]any{"value": ""}, "value"),
		badRequest("400 colour out of range", "PATCH", path, lw.member, map[string]any{"color_hue": -1}, "color_hue"),
		badRequest("400 malformed label id", "PATCH", "/v2/queues/"+lw.queue+"/labels/l1", lw.member, map[string]any{"value": "v"}, "label_id"),
		forbidden("403 viewer", "PATCH", path, lw.viewer, map[string]any{"value": "v"}, "updateQueueLabel"),
		notFound("404 a label of another queue", "PATCH", "/v2/queues/"+lw.queue+"/labels/"+elsewhere, lw.member, map[string]any{"value": "v"}),
		notFound("404 random label", "PATCH", "/v2/queues/"+lw.queue+"/labels/"+randomID(), lw.member, map[string]any{"value": "v"}),
		notFound("404 another team's queue", "PATCH", "/v2/queues/"+lw.otherQueue+"/labels/"+label, lw.owner, map[string]any{"value": "v"}),
	}
	scenarios = append(scenarios, unauthenticated("PATCH", path, map[string]any{"value": "v"})...)
	runScenarios(t, s, scenarios)
}

func TestDeleteQueueLabel(t *testing.T) {
	lw := newLabelsWorld(t)
	s := lw.s
	second := seedCase(t, s, lw.team, lw.queue, seededCase{})
	for _, c := range []string{lw.kase, second} {
		if r := s.Do(t, "POST", "/v2/queues/"+lw.queue+"/cases/"+c+"/labels", lw.member,
			map[string]any{"labels": []any{map[string]any{"value": "urgent"}, map[string]any{"value": "vip"}}}); r.Status != 200 {
			t.Fatalf("assign: %d %s", r.Status, r.Body)
		}
	}
	ls := labelsOf(t, s.Do(t, "GET", "/v2/queues/"+lw.queue+"/labels", lw.viewer, nil), queueLabelKeys...)
	urgent := ls[0]["id"].(string)
	path := "/v2/queues/" + lw.queue + "/labels/" + urgent
	scenarios := []scenario{
		badRequest("400 malformed label id", "DELETE", "/v2/queues/"+lw.queue+"/labels/l1", lw.member, nil, "label_id"),
		forbidden("403 viewer", "DELETE", path, lw.viewer, nil, "deleteQueueLabel"),
		notFound("404 another team's queue", "DELETE", "/v2/queues/"+lw.otherQueue+"/labels/"+urgent, lw.owner, nil),
		notFound("404 random label", "DELETE", "/v2/queues/"+lw.queue+"/labels/"+randomID(), lw.owner, nil),
		{name: "200 takes it off every case, each recording why", method: "DELETE", path: path, key: lw.member, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "deleteQueueLabel body", m, "success")
				for _, c := range []string{lw.kase, second} {
					on := labelsOf(t, s.Do(t, "GET", "/v2/queues/"+lw.queue+"/cases/"+c+"/labels", lw.viewer, nil), caseLabelKeys...)
					if labelNames(on) != ":vip" {
						t.Fatalf("case %s labels = %s, want only :vip", c, labelNames(on))
					}
					ev := caseEvents(t, s, c, "labels_unlinked")
					if len(ev) != 1 || eventLabels(t, ev[0]) != ":urgent" || ev[0].Reason == nil || *ev[0].Reason != "label deleted" ||
						ev[0].APIKeyID == nil || *ev[0].APIKeyID != keyID(t, s, lw.member) || ev[0].Channel != "api" {
						t.Fatalf("case %s unlink events = %+v", c, ev)
					}
				}
				wantAudited(t, s, lw.team, "deleteQueueLabel", urgent, keyID(t, s, lw.member), "success")
			}},
		notFound("404 deleting twice", "DELETE", path, lw.member, nil),
	}
	scenarios = append(scenarios, unauthenticated("DELETE", path, nil)...)
	runScenarios(t, s, scenarios)
}

func TestAssignCaseLabels(t *testing.T) {
	lw := newLabelsWorld(t)
	s := lw.s
	existing := lw.createLabel(t, "customer", "Acme")
	elsewhereQueue := apiCreateQueue(t, s, lw.team, lw.member, "Second")
	path := "/v2/queues/" + lw.queue + "/cases/" + lw.kase + "/labels"
	one := map[string]any{"labels": []any{map[string]any{"value": "x"}}}
	var fifty, fiftyOne []any
	for i := range 51 {
		l := map[string]any{"value": fmt.Sprintf("v%d", i)}
		fiftyOne = append(fiftyOne, l)
		if i < 50 {
			fifty = append(fifty, l)
		}
	}
	scenarios := []scenario{
		{name: "200 reuses existing labels and creates missing ones", method: "POST", path: path, key: lw.member,
			body: map[string]any{"labels": []any{map[string]any{"key": "customer", "value": "Acme"}, map[string]any{"value": "urgent"},
				map[string]any{"key": "customer", "value": "Acme"}}}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				ls := labelsOf(t, r, caseLabelKeys...)
				if labelNames(ls) != "customer:Acme,:urgent" || ls[0]["id"] != existing {
					t.Fatalf("labels = %v; want the existing customer:Acme, then urgent, each once", ls)
				}
				if n := countRows(t, s, "SELECT count(*) FROM queue_labels WHERE queue_id = ?", lw.queue); n != 2 {
					t.Fatalf("queue labels = %d, want 2", n)
				}
				ev := caseEvents(t, s, lw.kase, "labels_assigned")
				if len(ev) != 1 || eventLabels(t, ev[0]) != "customer:Acme,:urgent" || ev[0].UserID == nil || ev[0].Channel != "api" {
					t.Fatalf("assign events = %+v", ev)
				}
				wantAudited(t, s, lw.team, "assignCaseLabels", lw.kase, keyID(t, s, lw.member), "success")
			}},
		{name: "200 again records only what changed", method: "POST", path: path, key: lw.member,
			body: map[string]any{"labels": []any{map[string]any{"value": "urgent"}, map[string]any{"key": "team", "value": "north"}}}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if ls := labelsOf(t, r, caseLabelKeys...); labelNames(ls) != ":urgent,team:north" {
					t.Fatalf("labels = %s", labelNames(ls))
				}
				ev := caseEvents(t, s, lw.kase, "labels_assigned")
				if len(ev) != 2 || eventLabels(t, ev[1]) != "team:north" {
					t.Fatalf("assign events = %+v", ev)
				}
			}},
		{name: "200 a repeat changes nothing and records nothing", method: "POST", path: path, key: lw.member,
			body: map[string]any{"labels": []any{map[string]any{"value": "urgent"}}}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if ev := caseEvents(t, s, lw.kase, "labels_assigned"); len(ev) != 2 {
					t.Fatalf("assign events = %d, want still 2", len(ev))
				}
			}},
		{name: "200 fifty at once", method: "POST", path: path, key: lw.member, body: map[string]any{"labels": fifty}, wantStatus: 200},
		badRequest("400 labels missing", "POST", path, lw.member, map[string]any{}, "labels"),
		badRequest("400 no labels", "POST", path, lw.member, map[string]any{"labels": []any{}}, "labels"),
		badRequest("400 null labels", "POST", path, lw.member, map[string]any{"labels": nil}, "labels"),
		badRequest("400 fifty-one labels", "POST", path, lw.member, map[string]any{"labels": fiftyOne}, "labels"),
		{name: "400 a value missing", method: "POST", path: path, key: lw.member, body: map[string]any{"labels": []any{map[string]any{"value": "ok"}, map[string]any{"key": "k"}}},
			wantStatus: 400, wantError: "invalid_request", wantContains: []string{"labels[1]", "value"}},
		badRequest("400 a value blank", "POST", path, lw.member, map[string]any{"labels": []any{map[string]any{"value": "ok"}, map[string]any{"value": " "}}}, "labels[1].value"),
		badRequest("400 malformed case id", "POST", "/v2/queues/"+lw.queue+"/cases/c1/labels", lw.member, one, "case_id"),
		forbidden("403 viewer", "POST", path, lw.viewer, one, "assignCaseLabels"),
		notFound("404 the case is in another queue", "POST", "/v2/queues/"+elsewhereQueue+"/cases/"+lw.kase+"/labels", lw.member, one),
		notFound("404 another team's case", "POST", "/v2/queues/"+lw.otherQueue+"/cases/"+lw.otherCase+"/labels", lw.owner, one),
		notFound("404 random case", "POST", "/v2/queues/"+lw.queue+"/cases/"+randomID()+"/labels", lw.owner, one),
		notFound("404 random queue", "POST", "/v2/queues/"+randomID()+"/cases/"+lw.kase+"/labels", lw.owner, one),
	}
	scenarios = append(scenarios, unauthenticated("POST", path, one)...)
	runScenarios(t, s, scenarios)
	t.Run("refused requests label nothing", func(t *testing.T) {
		if n := countRows(t, s, "SELECT count(*) FROM queue_labels WHERE value IN ('ok', 'x', 'v50')"); n != 0 {
			t.Fatalf("%d labels created by refused requests", n)
		}
		if n := countRows(t, s, "SELECT count(*) FROM queue_labels WHERE queue_id = ?", lw.otherQueue); n != 0 {
			t.Fatalf("the other team's queue got %d labels", n)
		}
	})
}

func TestListCaseLabels(t *testing.T) {
	lw := newLabelsWorld(t)
	s := lw.s
	if r := s.Do(t, "POST", "/v2/queues/"+lw.queue+"/cases/"+lw.kase+"/labels", lw.member,
		map[string]any{"labels": []any{map[string]any{"key": "b", "value": "2"}, map[string]any{"key": "a", "value": "1"}}}); r.Status != 200 {
		t.Fatalf("assign: %d %s", r.Status, r.Body)
	}
	lw.createLabel(t, "c", "unused")
	bare := seedCase(t, s, lw.team, lw.queue, seededCase{})
	path := "/v2/queues/" + lw.queue + "/cases/" + lw.kase + "/labels"
	scenarios := []scenario{
		{name: "200 the case's labels by key", method: "GET", path: path, key: lw.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if ls := labelsOf(t, r, caseLabelKeys...); labelNames(ls) != "a:1,b:2" {
					t.Fatalf("labels = %s", labelNames(ls))
				}
			}},
		{name: "200 a page", method: "GET", path: path + "?limit=1&offset=1", key: lw.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if ls := labelsOf(t, r, caseLabelKeys...); labelNames(ls) != "b:2" {
					t.Fatalf("labels = %s", labelNames(ls))
				}
			}},
		{name: "200 none", method: "GET", path: "/v2/queues/" + lw.queue + "/cases/" + bare + "/labels", key: lw.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if string(r.Body) != `{"labels":[]}`+"\n" && string(r.Body) != `{"labels":[]}` {
					t.Fatalf("body = %q", r.Body)
				}
			}},
		badRequest("400 limit over 1000", "GET", path+"?limit=1001", lw.viewer, nil, "limit"),
		badRequest("400 malformed case id", "GET", "/v2/queues/"+lw.queue+"/cases/c1/labels", lw.viewer, nil, "case_id"),
		notFound("404 another team's case", "GET", "/v2/queues/"+lw.otherQueue+"/cases/"+lw.otherCase+"/labels", lw.owner, nil),
		notFound("404 their case through our queue", "GET", "/v2/queues/"+lw.queue+"/cases/"+lw.otherCase+"/labels", lw.owner, nil),
		notFound("404 random case", "GET", "/v2/queues/"+lw.queue+"/cases/"+randomID()+"/labels", lw.owner, nil),
	}
	scenarios = append(scenarios, unauthenticated("GET", path, nil)...)
	runScenarios(t, s, scenarios)
}

func TestUnlinkCaseLabels(t *testing.T) {
	lw := newLabelsWorld(t)
	s := lw.s
	r := s.Do(t, "POST", "/v2/queues/"+lw.queue+"/cases/"+lw.kase+"/labels", lw.member,
		map[string]any{"labels": []any{map[string]any{"value": "urgent"}, map[string]any{"value": "vip"}}})
	if r.Status != 200 {
		t.Fatalf("assign: %d %s", r.Status, r.Body)
	}
	assigned := labelsOf(t, r, caseLabelKeys...)
	urgent, vip := assigned[0]["id"].(string), assigned[1]["id"].(string)
	unused := lw.createLabel(t, "", "unused")
	second := apiCreateQueue(t, s, lw.team, lw.member, "Second")
	r = s.Do(t, "POST", "/v2/queues/"+second+"/labels", lw.member, map[string]any{"value": "elsewhere"})
	elsewhere := field(t, r.JSON(t), "label", "id").(string)
	path := "/v2/queues/" + lw.queue + "/cases/" + lw.kase + "/labels/unlink"
	body := func(ids ...string) map[string]any { return map[string]any{"label_ids": ids} }
	onCase := func(t *testing.T) string {
		t.Helper()
		return labelNames(labelsOf(t, s.Do(t, "GET", "/v2/queues/"+lw.queue+"/cases/"+lw.kase+"/labels", lw.viewer, nil), caseLabelKeys...))
	}
	scenarios := []scenario{
		badRequest("400 a label of another queue, named", "POST", path, lw.member, body(urgent, elsewhere), "label_ids[1]: label "+elsewhere),
		badRequest("400 an unknown label id, named", "POST", path, lw.member, body(randomID()), "label_ids[0]"),
		badRequest("400 a malformed label id, named", "POST", path, lw.member, body("l1"), "label_ids[0]"),
		badRequest("400 no ids", "POST", path, lw.member, map[string]any{"label_ids": []string{}}, "label_ids"),
		badRequest("400 null ids", "POST", path, lw.member, map[string]any{"label_ids": nil}, "label_ids"),
		badRequest("400 label_ids missing", "POST", path, lw.member, map[string]any{}, "label_ids"),
		{name: "refused unlinks removed nothing", method: "GET", path: "/v2/queues/" + lw.queue + "/cases/" + lw.kase + "/labels", key: lw.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if got := onCase(t); got != ":urgent,:vip" {
					t.Fatalf("labels = %s", got)
				}
			}},
		{name: "200 removes; a label the case lacks is skipped", method: "POST", path: path, key: lw.member, body: body(urgent, unused), wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "unlinkCaseLabels body", m, "success")
				if m["success"] != true || onCase(t) != ":vip" {
					t.Fatalf("body %s, labels %s", r.Body, onCase(t))
				}
				ev := caseEvents(t, s, lw.kase, "labels_unlinked")
				if len(ev) != 1 || eventLabels(t, ev[0]) != ":urgent" {
					t.Fatalf("unlink events = %+v", ev)
				}
				if n := countRows(t, s, "SELECT count(*) FROM queue_labels WHERE id = ?", urgent); n != 1 {
					t.Fatal("unlinking must keep the queue's label")
				}
				wantAudited(t, s, lw.team, "unlinkCaseLabels", lw.kase, keyID(t, s, lw.member), "success")
			}},
		{name: "200 again records nothing", method: "POST", path: path, key: lw.member, body: body(urgent), wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if ev := caseEvents(t, s, lw.kase, "labels_unlinked"); len(ev) != 1 {
					t.Fatalf("unlink events = %d, want still 1", len(ev))
				}
			}},
		forbidden("403 viewer", "POST", path, lw.viewer, body(vip), "unlinkCaseLabels"),
		notFound("404 another team's case", "POST", "/v2/queues/"+lw.otherQueue+"/cases/"+lw.otherCase+"/labels/unlink", lw.owner, body(vip)),
		notFound("404 random case", "POST", "/v2/queues/"+lw.queue+"/cases/"+randomID()+"/labels/unlink", lw.owner, body(vip)),
		badRequest("400 malformed queue id", "POST", "/v2/queues/q1/cases/"+lw.kase+"/labels/unlink", lw.member, body(vip), "queue_id"),
	}
	scenarios = append(scenarios, unauthenticated("POST", path, body(vip))...)
	runScenarios(t, s, scenarios)
}
