package web_test

import (
	"context"
	"testing"

	"docket/internal/testkit"
	"docket/store"
)

func TestListAgents(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	withBuild, build := createAgent(t, s, w.team, w.owner, "Bravo", true)
	bare, _ := createAgent(t, s, w.team, w.owner, "alpha", false)
	base := "/v2/teams/" + w.team + "/agents"
	scenarios := []scenario{
		{name: "200 envelope, sorted by name, with latest_build", method: "GET", path: base, key: w.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "listAgents body", m, "agents", "total", "limit", "offset")
				if m["total"] != float64(2) || m["limit"] != float64(20) || m["offset"] != float64(0) {
					t.Fatalf("total/limit/offset = %v/%v/%v, want 2/20/0", m["total"], m["limit"], m["offset"])
				}
				agents := m["agents"].([]any)
				if len(agents) != 2 {
					t.Fatalf("agents = %d, want 2 (team B's must not show)", len(agents))
				}
				a0, a1 := agents[0].(map[string]any), agents[1].(map[string]any)
				if a0["id"] != bare || a1["id"] != withBuild {
					t.Fatalf("order = %v, %v; want alpha then Bravo (case-insensitive name order)", a0["name"], a1["name"])
				}
				if v, ok := a0["latest_build"]; !ok || v != nil {
					t.Fatalf("agent without a setup: latest_build = %v (present %v), want null", v, ok)
				}
				lb := field(t, a1, "latest_build").(map[string]any)
				if lb["id"] != build || lb["status"] != "live" || lb["agent_id"] != withBuild || lb["copilot_id"] != withBuild {
					t.Fatalf("latest_build = %v, want the live setup %s", lb, build)
				}
				if field(t, lb, "config", "data", "input") != "You are Bravo." {
					t.Fatalf("latest_build config = %v", lb["config"])
				}
				if _, ok := lb["schedules"]; ok {
					t.Fatalf("schedules present without include_schedules=true")
				}
			}},
		{name: "include_schedules adds schedules to latest_build", method: "GET", path: base + "?include_schedules=true", key: w.viewer, wantStatus: 200,
			wantContains: []string{`"schedules":[]`}},
		{name: "limit and offset page", method: "GET", path: base + "?limit=1&offset=1", key: w.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				agents := m["agents"].([]any)
				if m["total"] != float64(2) || m["limit"] != float64(1) || m["offset"] != float64(1) || len(agents) != 1 || agents[0].(map[string]any)["id"] != withBuild {
					t.Fatalf("page: %s", r.Body)
				}
			}},
		badRequest("400 limit=0", "GET", base+"?limit=0", w.owner, nil, "limit"),
		badRequest("400 limit=101", "GET", base+"?limit=101", w.owner, nil, "limit"),
		badRequest("400 offset=-1", "GET", base+"?offset=-1", w.owner, nil, "offset"),
		badRequest("400 include_schedules=maybe", "GET", base+"?include_schedules=maybe", w.owner, nil, "include_schedules"),
		notFound("404 for another team", "GET", "/v2/teams/"+w.otherTeam+"/agents", w.owner, nil),
		notFound("404 for a random team", "GET", "/v2/teams/"+randomID()+"/agents", w.owner, nil),
	}
	scenarios = append(scenarios, unauthenticated("GET", base, nil)...)
	runScenarios(t, s, scenarios)
}

func TestCreateAgent(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	ctx := context.Background()
	base := "/v2/teams/" + w.team + "/agents"
	var plainID string
	scenarios := []scenario{
		{name: "201 without a build", method: "POST", path: base, key: w.member,
			body: map[string]any{"name": "  Triage  ", "description": "Sorts the inbox", "thread_id": "th-1"}, wantStatus: 201,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				if _, ok := m["build"]; ok {
					t.Fatalf("build present without one requested: %s", r.Body)
				}
				ag := m["agent"].(map[string]any)
				plainID = ag["id"].(string)
				if ag["name"] != "Triage" || ag["thread_id"] != "th-1" || ag["team_id"] != w.team || ag["live_build_id"] != nil || ag["description"] != "Sorts the inbox" {
					t.Fatalf("agent = %v", ag)
				}
				got, err := s.Store.GetAgent(ctx, w.team, plainID, "")
				if err != nil || got.Name != "Triage" || got.LiveBuildID != nil || got.CreatedBy == nil || got.CreatedBy.Email == "" {
					t.Fatalf("stored agent = %+v, %v", got, err)
				}
				wantAudited(t, s, w.team, "createAgent", plainID, keyID(t, s, w.member), "success")
			}},
		{name: "201 with a build that goes live", method: "POST", path: base, key: w.owner,
			body: map[string]any{"name": "Writer", "build": map[string]any{"name": "first", "config": setupConfig("Write.")}}, wantStatus: 201,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				ag, b := m["agent"].(map[string]any), field(t, m, "build").(map[string]any)
				if ag["live_build_id"] != b["id"] || b["status"] != "live" || b["revision_number"] != float64(1) || b["agent_id"] != ag["id"] {
					t.Fatalf("agent %v / build %v: want build live as revision 1", ag, b)
				}
				// The config comes back normalised: the lists the reference requires are there.
				data := field(t, b, "config", "data").(map[string]any)
				for _, k := range []string{"files", "skills", "plugins", "subAgents"} {
					if l, ok := data[k].([]any); !ok || len(l) != 0 {
						t.Fatalf("config.data.%s = %v, want []", k, data[k])
					}
				}
				got, err := s.Store.GetBuild(ctx, w.team, ag["id"].(string), b["id"].(string))
				if err != nil || got.Status != "live" {
					t.Fatalf("stored build = %+v, %v", got, err)
				}
			}},
		badRequest("400 name missing", "POST", base, w.owner, map[string]any{"description": "x"}, "name"),
		badRequest("400 name empty", "POST", base, w.owner, map[string]any{"name": ""}, "name"),
		badRequest("400 name blank", "POST", base, w.owner, map[string]any{"name": "   "}, "name"),
		badRequest("400 unknown field", "POST", base, w.owner, map[string]any{"name": "x", "colour": "red"}, "colour"),
		badRequest("400 bad build model", "POST", base, w.owner,
			map[string]any{"name": "x", "build": map[string]any{"name": "b", "config": map[string]any{"version": "v2", "data": map[string]any{
				"models": map[string]any{"agent": map[string]any{"model": "no spaces allowed"}}, "input": "x"}}}}, "build.config.data.models.agent.model"),
		badRequest("400 build without config", "POST", base, w.owner, map[string]any{"name": "x", "build": map[string]any{"name": "b"}}, "config"),
		badRequest("400 source_build_id of another team", "POST", base, w.owner, map[string]any{"name": "x", "source_build_id": w.otherBuild}, "source_build_id"),
		forbidden("403 viewer", "POST", base, w.viewer, map[string]any{"name": "nope"}, "createAgent"),
		notFound("404 another team", "POST", "/v2/teams/"+w.otherTeam+"/agents", w.owner, map[string]any{"name": "x"}),
		notFound("404 random team", "POST", "/v2/teams/"+randomID()+"/agents", w.owner, map[string]any{"name": "x"}),
	}
	scenarios = append(scenarios, unauthenticated("POST", base, map[string]any{"name": "x"})...)
	runScenarios(t, s, scenarios)

	t.Run("only the successful creates made agents", func(t *testing.T) {
		_, total, err := s.Store.ListAgents(ctx, w.team, "", store.AgentFilter{Limit: 100})
		if err != nil || total != 2 {
			t.Fatalf("team has %d agents (%v), want 2", total, err)
		}
	})
	t.Run("source_build_id copies the setup as the first live one", func(t *testing.T) {
		_, src := createAgent(t, s, w.team, w.owner, "Source", true)
		r := s.Do(t, "POST", base, w.owner, map[string]any{"name": "Clone", "source_build_id": src})
		if r.Status != 201 {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
		m := r.JSON(t)
		b := field(t, m, "build").(map[string]any)
		if b["parent_build_id"] != src || b["status"] != "live" || field(t, b, "config", "data", "input") != "You are Source." {
			t.Fatalf("build = %v, want a live copy of %s", b, src)
		}
	})
	t.Run("a viewer's denied create is audited", func(t *testing.T) {
		wantAudited(t, s, w.team, "createAgent", "createAgent", keyID(t, s, w.viewer), "denied")
	})
}

func TestGetAgent(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	id, build := createAgent(t, s, w.team, w.owner, "Reader", true)
	scenarios := []scenario{
		{name: "200 agent and user_context", method: "GET", path: "/v2/agents/" + id, key: w.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "getAgent body", m, "agent", "user_context")
				ag := m["agent"].(map[string]any)
				if ag["id"] != id || ag["name"] != "Reader" || ag["live_build_id"] != build || ag["team_id"] != w.team {
					t.Fatalf("agent = %v", ag)
				}
				cb := field(t, ag, "created_by").(map[string]any)
				if cb["email"] != "admin@localhost" {
					t.Fatalf("created_by = %v", cb)
				}
				if v, ok := m["user_context"].(map[string]any)["pinned_at"]; !ok || v != nil {
					t.Fatalf("user_context.pinned_at = %v, want null", v)
				}
			}},
		badRequest("400 malformed id", "GET", "/v2/agents/not-an-id", w.owner, nil, "agent_id"),
		notFound("404 another team's agent", "GET", "/v2/agents/"+w.otherAgent, w.owner, nil),
		notFound("404 random id", "GET", "/v2/agents/"+randomID(), w.owner, nil),
	}
	scenarios = append(scenarios, unauthenticated("GET", "/v2/agents/"+id, nil)...)
	runScenarios(t, s, scenarios)
}

func TestUpdateAgent(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	ctx := context.Background()
	id, _ := createAgent(t, s, w.team, w.owner, "Before", false)
	other, _ := createAgent(t, s, w.team, w.owner, "Aardvark", false)
	path := "/v2/agents/" + id
	stored := func(t *testing.T, viewer string) store.Agent {
		t.Helper()
		a, err := s.Store.GetAgent(ctx, w.team, id, viewer)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	_, memberID := s.Member(t, store.RoleViewer) // a bystander whose pins stay empty
	scenarios := []scenario{
		{name: "200 renames and sets flags and thread_id", method: "PATCH", path: path, key: w.member,
			body: map[string]any{"name": "After", "description": "d", "slack_enabled": true, "agentic_memory_enabled": true, "thread_id": "th-9"}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				ag := r.JSON(t)["agent"].(map[string]any)
				if ag["name"] != "After" || ag["slack_enabled"] != true || ag["agentic_memory_enabled"] != true || ag["microsoft_teams_enabled"] != false || ag["thread_id"] != "th-9" {
					t.Fatalf("agent = %v", ag)
				}
				a := stored(t, "")
				if a.Name != "After" || a.Description != "d" || !a.SlackEnabled || a.ThreadID == nil || *a.ThreadID != "th-9" {
					t.Fatalf("stored = %+v", a)
				}
				if a.UpdatedBy == nil || a.UpdatedBy.Email == "admin@localhost" {
					t.Fatalf("updated_by = %+v, want the member", a.UpdatedBy)
				}
				wantAudited(t, s, w.team, "updateAgent", id, keyID(t, s, w.member), "success")
			}},
		{name: "absent thread_id leaves it", method: "PATCH", path: path, key: w.owner, body: map[string]any{"microsoft_teams_enabled": true}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if a := stored(t, ""); a.ThreadID == nil || *a.ThreadID != "th-9" || !a.MicrosoftTeamsEnabled || a.Name != "After" {
					t.Fatalf("absent thread_id changed the agent: %+v", a)
				}
			}},
		{name: "null thread_id clears it", method: "PATCH", path: path, key: w.owner, body: `{"thread_id":null}`, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				ag := r.JSON(t)["agent"].(map[string]any)
				if v, ok := ag["thread_id"]; !ok || v != nil {
					t.Fatalf("thread_id = %v, want null", v)
				}
				if a := stored(t, ""); a.ThreadID != nil {
					t.Fatalf("stored thread_id = %q, want NULL", *a.ThreadID)
				}
			}},
		{name: "pinned true pins for the caller only", method: "PATCH", path: path, key: w.owner, body: map[string]any{"pinned": true}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if field(t, r.JSON(t), "user_context", "pinned_at") == nil {
					t.Fatalf("pinned_at is null after pinning: %s", r.Body)
				}
				if stored(t, w.s.OwnerID).PinnedAt == nil {
					t.Fatal("owner's pin not stored")
				}
				if stored(t, memberID).PinnedAt != nil {
					t.Fatal("a pin leaked to another user")
				}
				// Pinned agents list first for their pinner, though "After" sorts after "Aardvark".
				lr := s.Do(t, "GET", "/v2/teams/"+w.team+"/agents", w.owner, nil)
				first := lr.JSON(t)["agents"].([]any)[0].(map[string]any)
				if first["id"] != id || first["pinned_at"] == nil {
					t.Fatalf("pinned agent is not first: %s", lr.Body)
				}
				lr = s.Do(t, "GET", "/v2/teams/"+w.team+"/agents", w.member, nil)
				if lr.JSON(t)["agents"].([]any)[0].(map[string]any)["id"] != other {
					t.Fatalf("the owner's pin reordered the member's list: %s", lr.Body)
				}
			}},
		{name: "pinned false unpins", method: "PATCH", path: path, key: w.owner, body: map[string]any{"pinned": false}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if field(t, r.JSON(t), "user_context", "pinned_at") != nil || stored(t, w.s.OwnerID).PinnedAt != nil {
					t.Fatalf("still pinned: %s", r.Body)
				}
			}},
		badRequest("400 empty name", "PATCH", path, w.owner, map[string]any{"name": ""}, "name"),
		badRequest("400 blank name", "PATCH", path, w.owner, map[string]any{"name": "  "}, "name"),
		badRequest("400 wrong type", "PATCH", path, w.owner, map[string]any{"slack_enabled": "yes"}, "slack_enabled"),
		badRequest("400 unknown field", "PATCH", path, w.owner, map[string]any{"nickname": "x"}, "nickname"),
		badRequest("400 malformed id", "PATCH", "/v2/agents/xyz", w.owner, map[string]any{"name": "x"}, "agent_id"),
		forbidden("403 viewer", "PATCH", path, w.viewer, map[string]any{"name": "Viewer was here"}, "updateAgent"),
		notFound("404 another team's agent", "PATCH", "/v2/agents/"+w.otherAgent, w.owner, map[string]any{"name": "Hijacked"}),
		notFound("404 random id", "PATCH", "/v2/agents/"+randomID(), w.owner, map[string]any{"name": "x"}),
	}
	scenarios = append(scenarios, unauthenticated("PATCH", path, map[string]any{"name": "x"})...)
	runScenarios(t, s, scenarios)
	t.Run("refused updates changed nothing", func(t *testing.T) {
		if a := stored(t, ""); a.Name != "After" {
			t.Fatalf("name = %q after refused updates", a.Name)
		}
		theirs, err := s.Store.GetAgent(ctx, w.otherTeam, w.otherAgent, "")
		if err != nil || theirs.Name != "Theirs" {
			t.Fatalf("team B's agent = %+v, %v", theirs, err)
		}
		wantAudited(t, s, w.team, "updateAgent", "updateAgent", keyID(t, s, w.viewer), "denied")
	})
}

func TestDeleteAgent(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	ctx := context.Background()
	id, _ := createAgent(t, s, w.team, w.owner, "Doomed", true)
	path := "/v2/agents/" + id
	scenarios := []scenario{
		badRequest("400 malformed id", "DELETE", "/v2/agents/42", w.owner, nil, "agent_id"),
		forbidden("403 viewer", "DELETE", path, w.viewer, nil, "deleteAgent"),
		notFound("404 another team's agent", "DELETE", "/v2/agents/"+w.otherAgent, w.owner, nil),
		notFound("404 random id", "DELETE", "/v2/agents/"+randomID(), w.owner, nil),
	}
	scenarios = append(scenarios, unauthenticated("DELETE", path, nil)...)
	scenarios = append(scenarios,
		scenario{name: "200 deletes", method: "DELETE", path: path, key: w.member, wantStatus: 200, wantContains: []string{`"success":true`},
			after: func(t *testing.T, r *testkit.Response) {
				if _, err := s.Store.GetAgent(ctx, w.team, id, ""); err == nil {
					t.Fatal("deleted agent still readable")
				}
				wantAudited(t, s, w.team, "deleteAgent", id, keyID(t, s, w.member), "success")
			}},
		notFound("404 once deleted: get", "GET", path, w.owner, nil),
		notFound("404 once deleted: delete again", "DELETE", path, w.owner, nil),
		scenario{name: "gone from the list", method: "GET", path: "/v2/teams/" + w.team + "/agents", key: w.owner, wantStatus: 200, wantContains: []string{`"total":0`}},
	)
	runScenarios(t, s, scenarios)
	if _, err := s.Store.GetAgent(ctx, w.otherTeam, w.otherAgent, ""); err != nil {
		t.Fatalf("team B's agent was deleted: %v", err)
	}
}

func TestMoveAgent(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	ctx := context.Background()
	// A second team the owner administers too: the move's target.
	target, err := s.Store.CreateTeam(ctx, store.Actor{UserID: s.OwnerID, Channel: "system", Operation: "test"}, "Target", s.OwnerID)
	if err != nil {
		t.Fatal(err)
	}
	folder := createFolder(t, s, w.team, w.owner, "Shelf", nil)
	id, build := createAgent(t, s, w.team, w.owner, "Mover", true)
	if r := s.Do(t, "POST", "/v2/teams/"+w.team+"/agent-folders/move-agents", w.owner, map[string]any{"agent_ids": []string{id}, "folder_id": folder}); r.Status != 200 {
		t.Fatalf("move to folder: %d %s", r.Status, r.Body)
	}
	path := "/v2/agents/" + id + "/move"
	body := map[string]any{"target_team_id": target.ID}
	stillHome := func(t *testing.T) {
		t.Helper()
		a, err := s.Store.GetAgent(ctx, w.team, id, "")
		if err != nil || a.FolderID == nil || *a.FolderID != folder {
			t.Fatalf("agent left its team or folder: %+v, %v", a, err)
		}
	}
	scenarios := []scenario{
		{name: "dry_run=true reports and changes nothing", method: "POST", path: path + "?dry_run=true", key: w.owner, body: body, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				if m["applied"] != false || m["source_team_id"] != w.team || m["target_team_id"] != target.ID || m["root_agent_id"] != id {
					t.Fatalf("dry run = %s", r.Body)
				}
				dropped := field(t, m, "warnings", "dropped_folders").([]any)
				if len(dropped) != 1 || dropped[0].(map[string]any)["id"] != folder {
					t.Fatalf("dropped_folders = %v, want the agent's folder", dropped)
				}
				stillHome(t)
				entries, _, err := s.Store.ListAudit(ctx, w.team, store.AuditFilter{Operation: "moveAgent", Limit: 10})
				if err != nil || len(entries) != 0 {
					t.Fatalf("a dry run was audited as a move: %+v %v", entries, err)
				}
			}},
		badRequest("400 target_team_id missing", "POST", path, w.owner, map[string]any{}, "target_team_id"),
		badRequest("400 dry_run not a boolean", "POST", path+"?dry_run=perhaps", w.owner, body, "dry_run"),
		badRequest("400 malformed agent id", "POST", "/v2/agents/nope/move", w.owner, body, "agent_id"),
		forbidden("403 viewer", "POST", path, w.viewer, body, "moveAgent"),
		forbidden("403 member (admin-only)", "POST", path, w.member, body, "moveAgent"),
		notFound("404 another team's agent", "POST", "/v2/agents/"+w.otherAgent+"/move", w.owner, body),
		notFound("404 random agent", "POST", "/v2/agents/"+randomID()+"/move", w.owner, body),
		{name: "404 target team the caller does not administer", method: "POST", path: path, key: w.owner,
			body: map[string]any{"target_team_id": w.otherTeam}, wantStatus: 404, wantError: "not_found", wantContains: []string{"target_team_id"}},
		{name: "404 random target team", method: "POST", path: path, key: w.owner,
			body: map[string]any{"target_team_id": randomID()}, wantStatus: 404, wantError: "not_found", wantContains: []string{"target_team_id"}},
		{name: "404 admin of the source only", method: "POST", path: path, key: w.admin, body: body, wantStatus: 404, wantError: "not_found", wantContains: []string{"target_team_id"}},
		{name: "409 moving to its own team", method: "POST", path: path, key: w.owner, body: map[string]any{"target_team_id": w.team}, wantStatus: 409, wantError: "conflict"},
	}
	scenarios = append(scenarios, unauthenticated("POST", path, body)...)
	scenarios = append(scenarios, scenario{name: "200 moves with its setups", method: "POST", path: path, key: w.owner, body: body, wantStatus: 200,
		after: func(t *testing.T, r *testkit.Response) {
			if r.JSON(t)["applied"] != true {
				t.Fatalf("applied = false: %s", r.Body)
			}
			if _, err := s.Store.GetAgent(ctx, w.team, id, ""); err == nil {
				t.Fatal("agent still in the source team")
			}
			a, err := s.Store.GetAgent(ctx, target.ID, id, "")
			if err != nil || a.FolderID != nil || a.LiveBuildID == nil || *a.LiveBuildID != build {
				t.Fatalf("agent in target = %+v, %v; want it there, out of any folder, same live setup", a, err)
			}
			if _, err := s.Store.GetBuild(ctx, target.ID, id, build); err != nil {
				t.Fatalf("setup did not move with the agent: %v", err)
			}
			wantAudited(t, s, w.team, "moveAgent", id, w.ownerKeyID, "success")
			entries, _, err := s.Store.ListAudit(ctx, target.ID, store.AuditFilter{Operation: "moveAgent", Limit: 10})
			if err != nil || len(entries) != 1 || entries[0].TargetID != id {
				t.Fatalf("target team's audit = %+v, %v; want the move", entries, err)
			}
		}},
		notFound("404 from the source team afterwards", "GET", "/v2/agents/"+id, w.owner, nil),
	)
	runScenarios(t, s, scenarios)
}
