package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"docket/internal/testkit"
	"docket/store"
)

func TestListAgentRevisions(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	agent, live := createAgent(t, s, w.team, w.owner, "Versions", true)
	draft := createRevision(t, s, w.owner, agent, "second", nil)
	base := "/v2/agents/" + agent + "/revisions"
	scenarios := []scenario{
		{name: "200 newest first, envelope key for key", method: "GET", path: base, key: w.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "listAgentRevisions body", m, "builds", "total", "limit", "offset")
				if m["total"] != float64(2) || m["limit"] != float64(20) || m["offset"] != float64(0) {
					t.Fatalf("total/limit/offset = %v/%v/%v", m["total"], m["limit"], m["offset"])
				}
				bs := m["builds"].([]any)
				b0, b1 := bs[0].(map[string]any), bs[1].(map[string]any)
				if b0["id"] != draft || b0["status"] != "draft" || b0["revision_number"] != float64(2) || b0["parent_build_id"] != live {
					t.Fatalf("first = %v, want the draft (revision 2, parent the live one)", b0)
				}
				if b1["id"] != live || b1["status"] != "live" {
					t.Fatalf("second = %v, want the live setup", b1)
				}
			}},
		{name: "limit=1 offset=1", method: "GET", path: base + "?limit=1&offset=1", key: w.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				bs := m["builds"].([]any)
				if m["total"] != float64(2) || len(bs) != 1 || bs[0].(map[string]any)["id"] != live {
					t.Fatalf("page = %s", r.Body)
				}
			}},
		badRequest("400 limit=0", "GET", base+"?limit=0", w.owner, nil, "limit"),
		badRequest("400 limit=101", "GET", base+"?limit=101", w.owner, nil, "limit"),
		badRequest("400 malformed id", "GET", "/v2/agents/x/revisions", w.owner, nil, "agent_id"),
		notFound("404 another team's agent", "GET", "/v2/agents/"+w.otherAgent+"/revisions", w.owner, nil),
		notFound("404 random agent", "GET", "/v2/agents/"+randomID()+"/revisions", w.owner, nil),
	}
	scenarios = append(scenarios, unauthenticated("GET", base, nil)...)
	runScenarios(t, s, scenarios)
}

func TestCreateRevision(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	ctx := context.Background()
	agent, live := createAgent(t, s, w.team, w.owner, "Evolving", true)
	helper, _ := createAgent(t, s, w.team, w.owner, "Helper", false)
	bare, _ := createAgent(t, s, w.team, w.owner, "Bare", false)
	base := "/v2/agents/" + agent + "/revisions"
	cfg := setupConfig("Version two.")
	cfg["data"].(map[string]any)["max_turns"] = 7
	liveBuild, err := s.Store.GetBuild(ctx, w.team, agent, live)
	if err != nil {
		t.Fatal(err)
	}
	scenarios := []scenario{
		{name: "201 with a config", method: "POST", path: base, key: w.member,
			body: map[string]any{"name": "v2", "config": cfg, "handover_target_ids": []string{helper}}, wantStatus: 201,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "createRevision body", m, "build", "agent")
				b := m["build"].(map[string]any)
				if field(t, m, "agent", "id") != agent || b["status"] != "draft" || b["revision_number"] != float64(2) || b["parent_build_id"] != live {
					t.Fatalf("body = %s", r.Body)
				}
				if field(t, b, "config", "data", "input") != "Version two." || field(t, b, "config", "data", "max_turns") != float64(7) {
					t.Fatalf("config = %v", b["config"])
				}
				got, err := s.Store.GetBuild(ctx, w.team, agent, b["id"].(string))
				if err != nil || got.Status != "draft" || len(got.HandoverTargetIDs) != 1 || got.HandoverTargetIDs[0] != helper {
					t.Fatalf("stored = %+v, %v", got, err)
				}
				if a, _ := s.Store.GetAgent(ctx, w.team, agent, ""); a.LiveBuildID == nil || *a.LiveBuildID != live {
					t.Fatal("a new draft changed the live setup")
				}
				wantAudited(t, s, w.team, "createRevision", b["id"].(string), keyID(t, s, w.member), "success")
			}},
		{name: "201 without a config copies the live one", method: "POST", path: base, key: w.owner, body: map[string]any{"name": "copy"}, wantStatus: 201,
			after: func(t *testing.T, r *testkit.Response) {
				b := r.JSON(t)["build"].(map[string]any)
				got, err := s.Store.GetBuild(ctx, w.team, agent, b["id"].(string))
				if err != nil {
					t.Fatal(err)
				}
				if !jsonEqual(t, got.Config, liveBuild.Config) {
					t.Fatalf("copied config = %s, want the live one %s", got.Config, liveBuild.Config)
				}
				if b["revision_number"] != float64(3) {
					t.Fatalf("revision_number = %v, want 3", b["revision_number"])
				}
			}},
		badRequest("400 no config and nothing live to copy", "POST", "/v2/agents/"+bare+"/revisions", w.owner, map[string]any{"name": "x"}, "config"),
		badRequest("400 name missing", "POST", base, w.owner, map[string]any{"config": cfg}, "name"),
		badRequest("400 bad model", "POST", base, w.owner, map[string]any{"name": "x", "config": map[string]any{"version": "v2", "data": map[string]any{
			"models": map[string]any{"agent": map[string]any{"model": "bad model"}}, "input": "x"}}}, "config.data.models.agent.model"),
		badRequest("400 wrong config version", "POST", base, w.owner, map[string]any{"name": "x", "config": map[string]any{"version": "v9", "data": cfg["data"]}}, "version"),
		badRequest("400 unknown tool", "POST", base, w.owner, map[string]any{"name": "x", "config": map[string]any{"version": "v2", "data": map[string]any{
			"models": map[string]any{"agent": map[string]any{"model": "qwen3:4b"}}, "input": "x", "tools": []string{"rm_rf"}}}}, "config.data.tools[0]"),
		badRequest("400 handover target of another team", "POST", base, w.owner, map[string]any{"name": "x", "handover_target_ids": []string{w.otherAgent}}, "handover_target_ids[0]"),
		badRequest("400 source_build_id of another team", "POST", base, w.owner, map[string]any{"name": "x", "source_build_id": w.otherBuild}, "source_build_id"),
		badRequest("400 unknown field", "POST", base, w.owner, map[string]any{"name": "x", "prompt": "hi"}, "prompt"),
		badRequest("400 malformed agent id", "POST", "/v2/agents/abc/revisions", w.owner, map[string]any{"name": "x"}, "agent_id"),
		forbidden("403 viewer", "POST", base, w.viewer, map[string]any{"name": "x"}, "createRevision"),
		notFound("404 another team's agent", "POST", "/v2/agents/"+w.otherAgent+"/revisions", w.owner, map[string]any{"name": "x"}),
		notFound("404 random agent", "POST", "/v2/agents/"+randomID()+"/revisions", w.owner, map[string]any{"name": "x"}),
	}
	scenarios = append(scenarios, unauthenticated("POST", base, map[string]any{"name": "x"})...)
	runScenarios(t, s, scenarios)
	t.Run("refused creates made no setups", func(t *testing.T) {
		_, total, err := s.Store.ListBuilds(ctx, w.team, agent, 100, 0)
		if err != nil || total != 3 {
			t.Fatalf("setups = %d (%v), want 3", total, err)
		}
		if _, n, _ := s.Store.ListBuilds(ctx, w.otherTeam, w.otherAgent, 100, 0); n != 1 {
			t.Fatalf("team B's agent has %d setups, want 1", n)
		}
	})
}

func TestGetRevision(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	agent, live := createAgent(t, s, w.team, w.owner, "Readable", true)
	_, siblingBuild := createAgent(t, s, w.team, w.owner, "Sibling", true)
	path := "/v2/agents/" + agent + "/revisions/" + live
	scenarios := []scenario{
		{name: "200", method: "GET", path: path, key: w.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "getRevision body", m, "build")
				b := m["build"].(map[string]any)
				if b["id"] != live || b["agent_id"] != agent || b["status"] != "live" || b["locked"] != false || b["name"] != "Readable v1" {
					t.Fatalf("build = %v", b)
				}
			}},
		badRequest("400 malformed build id", "GET", "/v2/agents/"+agent+"/revisions/zzz", w.owner, nil, "build_id"),
		notFound("404 a setup of another assignment", "GET", "/v2/agents/"+agent+"/revisions/"+siblingBuild, w.owner, nil),
		notFound("404 another team's setup", "GET", "/v2/agents/"+w.otherAgent+"/revisions/"+w.otherBuild, w.owner, nil),
		notFound("404 another team's setup under our agent", "GET", "/v2/agents/"+agent+"/revisions/"+w.otherBuild, w.owner, nil),
		notFound("404 random id", "GET", "/v2/agents/"+agent+"/revisions/"+randomID(), w.owner, nil),
	}
	scenarios = append(scenarios, unauthenticated("GET", path, nil)...)
	runScenarios(t, s, scenarios)
}

func TestUpdateRevision(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	ctx := context.Background()
	agent, live := createAgent(t, s, w.team, w.owner, "Editable", true)
	helper, _ := createAgent(t, s, w.team, w.owner, "Helper", false)
	draft := createRevision(t, s, w.owner, agent, "draft", nil)
	path := "/v2/revisions/" + draft
	stored := func(t *testing.T) store.Build {
		t.Helper()
		b, err := s.Store.GetBuild(ctx, w.team, "", draft)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	scenarios := []scenario{
		{name: "200 names and describes", method: "PATCH", path: path, key: w.member,
			body: map[string]any{"revision_name": "Spring", "revision_description": "tighter SOP"}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				b := r.JSON(t)["build"].(map[string]any)
				if b["revision_name"] != "Spring" || b["revision_description"] != "tighter SOP" {
					t.Fatalf("build = %v", b)
				}
				if got := stored(t); got.RevisionName == nil || *got.RevisionName != "Spring" {
					t.Fatalf("stored = %+v", got)
				}
				wantAudited(t, s, w.team, "updateRevision", draft, keyID(t, s, w.member), "success")
			}},
		{name: "200 replaces config and handover targets (reference spelling)", method: "PATCH", path: path, key: w.owner,
			body: map[string]any{"config": setupConfig("New SOP."), "handoverTargetIds": []string{helper}}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				got := stored(t)
				var c map[string]any
				json.Unmarshal(got.Config, &c)
				if field(t, c, "data", "input") != "New SOP." || len(got.HandoverTargetIDs) != 1 || got.HandoverTargetIDs[0] != helper {
					t.Fatalf("stored = %s %v", got.Config, got.HandoverTargetIDs)
				}
				if got.RevisionName == nil || *got.RevisionName != "Spring" {
					t.Fatal("a config update cleared the revision name")
				}
			}},
		badRequest("400 empty revision_name", "PATCH", path, w.owner, map[string]any{"revision_name": ""}, "revision_name"),
		badRequest("400 bad config", "PATCH", path, w.owner, map[string]any{"config": map[string]any{"version": "v2", "data": map[string]any{
			"models": map[string]any{"agent": map[string]any{"model": "qwen3:4b"}}, "input": 42}}}, "config.data.input"),
		badRequest("400 handover to itself", "PATCH", path, w.owner, map[string]any{"handover_target_ids": []string{agent}}, "handover_target_ids[0]"),
		badRequest("400 unknown field", "PATCH", path, w.owner, map[string]any{"status": "live"}, "status"),
		badRequest("400 malformed id", "PATCH", "/v2/revisions/draft", w.owner, map[string]any{"revision_name": "x"}, "build_id"),
		forbidden("403 viewer", "PATCH", path, w.viewer, map[string]any{"revision_name": "x"}, "updateRevision"),
		notFound("404 another team's setup", "PATCH", "/v2/revisions/"+w.otherBuild, w.owner, map[string]any{"revision_name": "mine"}),
		notFound("404 random id", "PATCH", "/v2/revisions/"+randomID(), w.owner, map[string]any{"revision_name": "x"}),
	}
	scenarios = append(scenarios, unauthenticated("PATCH", path, map[string]any{"revision_name": "x"})...)
	runScenarios(t, s, scenarios)

	t.Run("a config read back from a response is valid input again", func(t *testing.T) {
		r := s.Do(t, "GET", "/v2/agents/"+agent+"/revisions/"+draft, w.owner, nil)
		cfg := field(t, r.JSON(t), "build", "config").(map[string]any)
		if v, ok := field(t, cfg, "data", "models").(map[string]any)["browsing"]; !ok || v != nil {
			t.Fatalf("config.data.models.browsing = %v (present %v), want null", v, ok)
		}
		cfg["data"].(map[string]any)["input"] = "Round trip."
		if r := s.Do(t, "PATCH", "/v2/revisions/"+draft, w.owner, map[string]any{"config": cfg}); r.Status != 200 {
			t.Fatalf("PATCH with the config as GET returned it: %d %s", r.Status, r.Body)
		}
		cfg["data"].(map[string]any)["models"].(map[string]any)["browsing"] = map[string]any{"provider": "google", "model": "gemini-2.5-pro"}
		r = s.Do(t, "PATCH", "/v2/revisions/"+draft, w.owner, map[string]any{"config": cfg})
		if r.Status != 200 || field(t, r.JSON(t), "build", "config", "data", "models", "browsing", "provider") != "google" {
			t.Fatalf("PATCH with a reference browsing model: %d %s", r.Status, r.Body)
		}
	})

	t.Run("409 once a run used it", func(t *testing.T) {
		if r := s.Do(t, "POST", "/v2/teams/"+w.team+"/runs", w.member, map[string]any{"agent_id": agent}); r.Status != 201 {
			t.Fatalf("startRun: %d %s", r.Status, r.Body)
		}
		before := stored(t)
		sc := scenario{method: "PATCH", path: "/v2/revisions/" + live, key: w.owner, body: map[string]any{"revision_name": "too late"},
			wantStatus: 409, wantError: "conflict", wantContains: []string{"/v2/agents/" + agent + "/revisions"}}
		sc.run(t, s)
		got, _ := s.Store.GetBuild(ctx, w.team, agent, live)
		if got.RevisionName != nil || got.FirstRunAt == nil {
			t.Fatalf("used setup changed: %+v", got)
		}
		if r := s.Do(t, "GET", "/v2/agents/"+agent+"/revisions/"+live, w.owner, nil); !bytes.Contains(r.Body, []byte(`"locked":true`)) {
			t.Fatalf("used setup not reported locked: %s", r.Body)
		}
		if after := stored(t); after.UpdatedAt != before.UpdatedAt {
			t.Fatal("the draft changed too")
		}
	})
	if b, _ := s.Store.GetBuild(ctx, w.otherTeam, "", w.otherBuild); b.RevisionName != nil {
		t.Fatalf("team B's setup renamed to %q", *b.RevisionName)
	}
}

func TestPromoteRevision(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	ctx := context.Background()
	agent, v1 := createAgent(t, s, w.team, w.owner, "Promoted", true)
	v2 := createRevision(t, s, w.owner, agent, "v2", setupConfig("Second."))
	v3 := createRevision(t, s, w.owner, agent, "v3", setupConfig("Third."))
	build := func(t *testing.T, id string) store.Build {
		t.Helper()
		b, err := s.Store.GetBuild(ctx, w.team, agent, id)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	liveID := func(t *testing.T) string {
		t.Helper()
		r := s.Do(t, "GET", "/v2/agents/"+agent, w.viewer, nil)
		return str(field(t, r.JSON(t), "agent", "live_build_id"))
	}
	scenarios := []scenario{
		badRequest("400 empty revision_name", "POST", "/v2/revisions/"+v2+"/promote", w.owner, map[string]any{"revision_name": ""}, "revision_name"),
		badRequest("400 unknown field", "POST", "/v2/revisions/"+v2+"/promote", w.owner, map[string]any{"when": "now"}, "when"),
		badRequest("400 malformed id", "POST", "/v2/revisions/v2/promote", w.owner, nil, "build_id"),
		forbidden("403 viewer", "POST", "/v2/revisions/"+v2+"/promote", w.viewer, nil, "promoteRevision"),
		notFound("404 another team's setup", "POST", "/v2/revisions/"+w.otherBuild+"/promote", w.owner, nil),
		notFound("404 random id", "POST", "/v2/revisions/"+randomID()+"/promote", w.owner, nil),
	}
	scenarios = append(scenarios, unauthenticated("POST", "/v2/revisions/"+v2+"/promote", nil)...)
	scenarios = append(scenarios,
		scenario{name: "refusals left v1 live", method: "GET", path: "/v2/agents/" + agent, key: w.owner, wantStatus: 200, wantContains: []string{`"live_build_id":"` + v1 + `"`}},
		scenario{name: "200 promotes v2 without a body; v1 is archived", method: "POST", path: "/v2/revisions/" + v2 + "/promote", key: w.member, wantStatus: 200,
			wantContains: []string{`"success":true`},
			after: func(t *testing.T, r *testkit.Response) {
				if got := liveID(t); got != v2 {
					t.Fatalf("live_build_id = %s, want %s", got, v2)
				}
				if b := build(t, v1); b.Status != "archived" {
					t.Fatalf("old live is %q, want archived", b.Status)
				}
				if b := build(t, v2); b.Status != "live" || b.PromotedAt == nil {
					t.Fatalf("promoted = %+v", b)
				}
				if b := build(t, v3); b.Status != "draft" {
					t.Fatalf("untouched draft is %q", b.Status)
				}
				wantAudited(t, s, w.team, "promoteRevision", v2, keyID(t, s, w.member), "success")
			}},
		scenario{name: "200 promotes v3 with a name; only one setup is live", method: "POST", path: "/v2/revisions/" + v3 + "/promote", key: w.owner,
			body: map[string]any{"revision_name": "Autumn", "revision_description": "final"}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if got := liveID(t); got != v3 {
					t.Fatalf("live_build_id = %s, want %s", got, v3)
				}
				b := build(t, v3)
				if b.RevisionName == nil || *b.RevisionName != "Autumn" || b.RevisionDescription == nil || *b.RevisionDescription != "final" {
					t.Fatalf("promoted = %+v", b)
				}
				bs, _, _ := s.Store.ListBuilds(ctx, w.team, agent, 100, 0)
				live := 0
				for _, b := range bs {
					if b.Status == "live" {
						live++
					}
				}
				if live != 1 || build(t, v2).Status != "archived" {
					t.Fatalf("%d live setups; v2 is %q", live, build(t, v2).Status)
				}
			}},
		scenario{name: "listAgents shows the new live setup as latest_build", method: "GET", path: "/v2/teams/" + w.team + "/agents", key: w.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				a := r.JSON(t)["agents"].([]any)[0].(map[string]any)
				if field(t, a, "latest_build", "id") != v3 {
					t.Fatalf("latest_build = %v", a["latest_build"])
				}
			}},
	)
	runScenarios(t, s, scenarios)
	if b, _ := s.Store.GetBuild(ctx, w.otherTeam, "", w.otherBuild); b.Status != "live" {
		t.Fatalf("team B's setup is %q", b.Status)
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return jsonString(t, x) == jsonString(t, y)
}
