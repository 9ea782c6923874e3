package web_test

import (
	"context"
	"strings"
	"testing"

	"docket/internal/testkit"
	"docket/store"
)

func TestListAgentFolders(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	top := createFolder(t, s, w.team, w.owner, "Top", nil)
	createFolder(t, s, w.team, w.owner, "Sub", &top)
	agent, _ := createAgent(t, s, w.team, w.owner, "Filed", false)
	if r := s.Do(t, "POST", "/v2/teams/"+w.team+"/agent-folders/move-agents", w.owner, map[string]any{"agent_ids": []string{agent}, "folder_id": top}); r.Status != 200 {
		t.Fatalf("move: %d %s", r.Status, r.Body)
	}
	base := "/v2/teams/" + w.team + "/agent-folders"
	scenarios := []scenario{
		{name: "200 folders with counts, envelope key for key", method: "GET", path: base, key: w.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "listAgentFolders body", m, "folders")
				fs := m["folders"].([]any)
				if len(fs) != 2 {
					t.Fatalf("folders = %d, want 2 (team B's must not show): %s", len(fs), r.Body)
				}
				sub, topF := fs[0].(map[string]any), fs[1].(map[string]any)
				wantKeys(t, "folder", topF, "id", "name", "team_id", "parent_folder_id", "created_at", "updated_at", "agent_count", "subfolder_count")
				if topF["id"] != top || topF["agent_count"] != float64(1) || topF["subfolder_count"] != float64(1) || topF["parent_folder_id"] != nil {
					t.Fatalf("Top = %v", topF)
				}
				if sub["parent_folder_id"] != top || sub["agent_count"] != float64(0) || sub["team_id"] != w.team {
					t.Fatalf("Sub = %v", sub)
				}
			}},
		notFound("404 another team", "GET", "/v2/teams/"+w.otherTeam+"/agent-folders", w.owner, nil),
		notFound("404 random team", "GET", "/v2/teams/"+randomID()+"/agent-folders", w.owner, nil),
	}
	// listAgentFolders takes only the team id (404, never 400) and any role may read it.
	scenarios = append(scenarios, unauthenticated("GET", base, nil)...)
	runScenarios(t, s, scenarios)
}

func TestCreateAgentFolder(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	ctx := context.Background()
	base := "/v2/teams/" + w.team + "/agent-folders"
	var parent string
	scenarios := []scenario{
		{name: "201 at the top", method: "POST", path: base, key: w.member, body: map[string]any{"name": " Finance "}, wantStatus: 201,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "createAgentFolder body", m, "folder")
				f := m["folder"].(map[string]any)
				parent = f["id"].(string)
				if f["name"] != "Finance" || f["team_id"] != w.team || f["parent_folder_id"] != nil {
					t.Fatalf("folder = %v", f)
				}
				fs, err := s.Store.ListFolders(ctx, w.team)
				if err != nil || len(fs) != 1 || fs[0].ID != parent {
					t.Fatalf("stored folders = %+v, %v", fs, err)
				}
				wantAudited(t, s, w.team, "createAgentFolder", parent, keyID(t, s, w.member), "success")
			}},
		// The same name is free under another parent: created again inside Finance below.
		{name: "201 a second top-level folder", method: "POST", path: base, key: w.owner, body: map[string]any{"name": "Invoices"}, wantStatus: 201},
		{name: "409 same name under the same parent", method: "POST", path: base, key: w.owner, body: map[string]any{"name": "Finance"}, wantStatus: 409, wantError: "conflict",
			wantContains: []string{"Finance"}},
		badRequest("400 name missing", "POST", base, w.owner, map[string]any{}, "name"),
		badRequest("400 name empty", "POST", base, w.owner, map[string]any{"name": ""}, "name"),
		badRequest("400 name too long", "POST", base, w.owner, map[string]any{"name": strings.Repeat("n", 101)}, "name"),
		badRequest("400 parent of another team", "POST", base, w.owner, map[string]any{"name": "x", "parent_folder_id": w.otherFolder}, "parent_folder_id"),
		badRequest("400 random parent", "POST", base, w.owner, map[string]any{"name": "x", "parent_folder_id": randomID()}, "parent_folder_id"),
		badRequest("400 unknown field", "POST", base, w.owner, map[string]any{"name": "x", "color": "blue"}, "color"),
		forbidden("403 viewer", "POST", base, w.viewer, map[string]any{"name": "x"}, "createAgentFolder"),
		notFound("404 another team", "POST", "/v2/teams/"+w.otherTeam+"/agent-folders", w.owner, map[string]any{"name": "x"}),
		notFound("404 random team", "POST", "/v2/teams/"+randomID()+"/agent-folders", w.owner, map[string]any{"name": "x"}),
	}
	scenarios = append(scenarios, unauthenticated("POST", base, map[string]any{"name": "x"})...)
	runScenarios(t, s, scenarios)
	t.Run("201 inside a parent", func(t *testing.T) {
		child := createFolder(t, s, w.team, w.owner, "Invoices", &parent)
		fs, _ := s.Store.ListFolders(ctx, w.team)
		for _, f := range fs {
			if f.ID == child && (f.ParentFolderID == nil || *f.ParentFolderID != parent) {
				t.Fatalf("child's parent = %v, want %s", f.ParentFolderID, parent)
			}
		}
		if len(fs) != 3 {
			t.Fatalf("folders = %d, want 3 (refused creates made none)", len(fs))
		}
	})
}

func TestUpdateAgentFolder(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	ctx := context.Background()
	a := createFolder(t, s, w.team, w.owner, "A", nil)
	b := createFolder(t, s, w.team, w.owner, "B", &a)
	c := createFolder(t, s, w.team, w.owner, "C", &b)
	other := createFolder(t, s, w.team, w.owner, "Other", nil)
	get := func(t *testing.T, id string) store.Folder {
		t.Helper()
		fs, err := s.Store.ListFolders(ctx, w.team)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if f.ID == id {
				return f
			}
		}
		t.Fatalf("folder %s not stored", id)
		return store.Folder{}
	}
	path := func(id string) string { return "/v2/agent-folders/" + id }
	scenarios := []scenario{
		{name: "200 renames", method: "PATCH", path: path(c), key: w.member, body: map[string]any{"name": "C2"}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				f := r.JSON(t)["folder"].(map[string]any)
				if f["name"] != "C2" || f["parent_folder_id"] != b {
					t.Fatalf("folder = %v; renaming must keep the parent", f)
				}
				if got := get(t, c); got.Name != "C2" {
					t.Fatalf("stored name = %q", got.Name)
				}
				wantAudited(t, s, w.team, "updateAgentFolder", c, keyID(t, s, w.member), "success")
			}},
		{name: "200 re-parents", method: "PATCH", path: path(c), key: w.owner, body: map[string]any{"parent_folder_id": other}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if got := get(t, c); got.ParentFolderID == nil || *got.ParentFolderID != other || got.Name != "C2" {
					t.Fatalf("stored = %+v", got)
				}
			}},
		{name: "200 null parent moves to the top", method: "PATCH", path: path(c), key: w.owner, body: `{"parent_folder_id":null}`, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if got := get(t, c); got.ParentFolderID != nil {
					t.Fatalf("parent = %s, want none", *got.ParentFolderID)
				}
			}},
		{name: "409 into its own child (cycle)", method: "PATCH", path: path(a), key: w.owner, body: map[string]any{"parent_folder_id": b}, wantStatus: 409, wantError: "conflict",
			wantContains: []string{"inside itself"},
			after: func(t *testing.T, r *testkit.Response) {
				if got := get(t, a); got.ParentFolderID != nil {
					t.Fatalf("refused move changed the parent to %s", *got.ParentFolderID)
				}
			}},
		{name: "409 into itself", method: "PATCH", path: path(a), key: w.owner, body: map[string]any{"parent_folder_id": a}, wantStatus: 409, wantError: "conflict"},
		{name: "409 name taken at the destination", method: "PATCH", path: path(c), key: w.owner, body: map[string]any{"name": "A"}, wantStatus: 409, wantError: "conflict"},
		badRequest("400 empty name", "PATCH", path(a), w.owner, map[string]any{"name": ""}, "name"),
		badRequest("400 parent of another team", "PATCH", path(a), w.owner, map[string]any{"parent_folder_id": w.otherFolder}, "parent_folder_id"),
		badRequest("400 unknown field", "PATCH", path(a), w.owner, map[string]any{"title": "x"}, "title"),
		badRequest("400 malformed id", "PATCH", path("nope"), w.owner, map[string]any{"name": "x"}, "folder_id"),
		forbidden("403 viewer", "PATCH", path(a), w.viewer, map[string]any{"name": "x"}, "updateAgentFolder"),
		notFound("404 another team's folder", "PATCH", path(w.otherFolder), w.owner, map[string]any{"name": "Mine now"}),
		notFound("404 random id", "PATCH", path(randomID()), w.owner, map[string]any{"name": "x"}),
	}
	scenarios = append(scenarios, unauthenticated("PATCH", path(a), map[string]any{"name": "x"})...)
	runScenarios(t, s, scenarios)
	if got := get(t, a); got.Name != "A" {
		t.Fatalf("refused updates renamed A to %q", got.Name)
	}
	fs, _ := s.Store.ListFolders(ctx, w.otherTeam)
	if len(fs) != 1 || fs[0].Name != "Their folder" {
		t.Fatalf("team B's folders = %+v", fs)
	}
}

func TestDeleteAgentFolder(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	ctx := context.Background()
	parent := createFolder(t, s, w.team, w.owner, "Parent", nil)
	full := createFolder(t, s, w.team, w.owner, "Full", &parent)
	sub := createFolder(t, s, w.team, w.owner, "Sub", &full)
	empty := createFolder(t, s, w.team, w.owner, "Empty", nil)
	agent, _ := createAgent(t, s, w.team, w.owner, "Inside", false)
	if r := s.Do(t, "POST", "/v2/teams/"+w.team+"/agent-folders/move-agents", w.owner, map[string]any{"agent_ids": []string{agent}, "folder_id": full}); r.Status != 200 {
		t.Fatalf("move: %d %s", r.Status, r.Body)
	}
	path := func(id string) string { return "/v2/agent-folders/" + id }
	folders := func(t *testing.T) map[string]store.Folder {
		t.Helper()
		fs, err := s.Store.ListFolders(ctx, w.team)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]store.Folder{}
		for _, f := range fs {
			out[f.ID] = f
		}
		return out
	}
	scenarios := []scenario{
		{name: "200 deletes an empty folder", method: "DELETE", path: path(empty), key: w.member, wantStatus: 200, wantContains: []string{`"success":true`},
			after: func(t *testing.T, r *testkit.Response) {
				if _, ok := folders(t)[empty]; ok {
					t.Fatal("folder still stored")
				}
				wantAudited(t, s, w.team, "deleteAgentFolder", empty, keyID(t, s, w.member), "success")
			}},
		{name: "409 non-empty without force", method: "DELETE", path: path(full), key: w.owner, wantStatus: 409, wantError: "conflict",
			wantContains: []string{"force=true", "1 assignment(s)", "1 subfolder(s)"},
			after: func(t *testing.T, r *testkit.Response) {
				if _, ok := folders(t)[full]; !ok {
					t.Fatal("refused delete removed the folder")
				}
			}},
		{name: "409 force=false is no force", method: "DELETE", path: path(full) + "?force=false", key: w.owner, wantStatus: 409, wantError: "conflict"},
		badRequest("400 force=maybe", "DELETE", path(full)+"?force=maybe", w.owner, nil, "force"),
		badRequest("400 malformed id", "DELETE", path("123"), w.owner, nil, "folder_id"),
		forbidden("403 viewer", "DELETE", path(full), w.viewer, nil, "deleteAgentFolder"),
		notFound("404 another team's folder", "DELETE", path(w.otherFolder), w.owner, nil),
		notFound("404 random id", "DELETE", path(randomID()), w.owner, nil),
	}
	scenarios = append(scenarios, unauthenticated("DELETE", path(full), nil)...)
	scenarios = append(scenarios,
		scenario{name: "200 force=true moves contents to the parent", method: "DELETE", path: path(full) + "?force=true", key: w.owner, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				fs := folders(t)
				if _, ok := fs[full]; ok {
					t.Fatal("folder still stored")
				}
				if p := fs[sub].ParentFolderID; p == nil || *p != parent {
					t.Fatalf("subfolder's parent = %v, want %s", p, parent)
				}
				a, err := s.Store.GetAgent(ctx, w.team, agent, "")
				if err != nil || a.FolderID == nil || *a.FolderID != parent {
					t.Fatalf("agent's folder = %v (%v), want %s", a.FolderID, err, parent)
				}
			}},
		notFound("404 once deleted", "DELETE", path(full), w.owner, nil),
	)
	runScenarios(t, s, scenarios)
	if fs, _ := s.Store.ListFolders(ctx, w.otherTeam); len(fs) != 1 {
		t.Fatalf("team B's folders = %+v", fs)
	}
}

func TestMoveAgentsToFolder(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	ctx := context.Background()
	folder := createFolder(t, s, w.team, w.owner, "Target", nil)
	a1, _ := createAgent(t, s, w.team, w.owner, "One", false)
	a2, _ := createAgent(t, s, w.team, w.owner, "Two", false)
	base := "/v2/teams/" + w.team + "/agent-folders/move-agents"
	folderOf := func(t *testing.T, id string) *string {
		t.Helper()
		a, err := s.Store.GetAgent(ctx, w.team, id, "")
		if err != nil {
			t.Fatal(err)
		}
		return a.FolderID
	}
	scenarios := []scenario{
		{name: "200 moves into a folder", method: "POST", path: base, key: w.member, body: map[string]any{"agent_ids": []string{a1, a2}, "folder_id": folder}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				if m["success"] != true || m["moved_count"] != float64(2) {
					t.Fatalf("body = %s", r.Body)
				}
				for _, id := range []string{a1, a2} {
					if f := folderOf(t, id); f == nil || *f != folder {
						t.Fatalf("agent %s folder = %v", id, f)
					}
				}
				wantAudited(t, s, w.team, "moveAgentsToFolder", folder, keyID(t, s, w.member), "success")
			}},
		{name: "404 one id of another team moves none", method: "POST", path: base, key: w.owner,
			body: map[string]any{"agent_ids": []string{a1, w.otherAgent}, "folder_id": nil}, wantStatus: 404, wantError: "not_found", wantContains: []string{"agent_ids[1]"},
			after: func(t *testing.T, r *testkit.Response) {
				if f := folderOf(t, a1); f == nil {
					t.Fatal("a refused move still moved the first agent")
				}
			}},
		{name: "200 null folder moves to the top", method: "POST", path: base, key: w.owner, body: map[string]any{"agent_ids": []string{a1}, "folder_id": nil}, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if f := folderOf(t, a1); f != nil {
					t.Fatalf("agent still in %s", *f)
				}
				if f := folderOf(t, a2); f == nil {
					t.Fatal("an agent not named was moved")
				}
			}},
		badRequest("400 empty agent_ids", "POST", base, w.owner, map[string]any{"agent_ids": []string{}, "folder_id": folder}, "agent_ids"),
		badRequest("400 folder_id missing", "POST", base, w.owner, map[string]any{"agent_ids": []string{a1}}, "folder_id"),
		badRequest("400 agent_ids not a list", "POST", base, w.owner, map[string]any{"agent_ids": a1, "folder_id": folder}, "agent_ids"),
		forbidden("403 viewer", "POST", base, w.viewer, map[string]any{"agent_ids": []string{a1}, "folder_id": folder}, "moveAgentsToFolder"),
		notFound("404 folder of another team", "POST", base, w.owner, map[string]any{"agent_ids": []string{a1}, "folder_id": w.otherFolder}),
		notFound("404 random folder", "POST", base, w.owner, map[string]any{"agent_ids": []string{a1}, "folder_id": randomID()}),
		notFound("404 random agent", "POST", base, w.owner, map[string]any{"agent_ids": []string{randomID()}, "folder_id": folder}),
		notFound("404 another team", "POST", "/v2/teams/"+w.otherTeam+"/agent-folders/move-agents", w.owner, map[string]any{"agent_ids": []string{w.otherAgent}, "folder_id": nil}),
		notFound("404 random team", "POST", "/v2/teams/"+randomID()+"/agent-folders/move-agents", w.owner, map[string]any{"agent_ids": []string{a1}, "folder_id": nil}),
	}
	scenarios = append(scenarios, unauthenticated("POST", base, map[string]any{"agent_ids": []string{a1}, "folder_id": folder})...)
	runScenarios(t, s, scenarios)
	if a, err := s.Store.GetAgent(ctx, w.otherTeam, w.otherAgent, ""); err != nil || a.FolderID != nil {
		t.Fatalf("team B's agent = %+v, %v", a, err)
	}
}
