package web_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"docket/internal/testkit"
	"docket/store"
)

// TestTeamIsolation gives team A an agent with setups, a folder and keys, then lets team
// B's owner try every operation on them. Each answers 404 (as for something that does
// not exist), nothing of A's shows up in B's lists, and A's data is byte-for-byte what
// it was.
func TestTeamIsolation(t *testing.T) {
	s := testkit.StartServer(t, testkit.Options{})
	ctx := context.Background()
	a, aKey := s.TeamID, s.OwnerKey
	b, bKey := s.NewTeam(t, "Team B")
	bAgent, _ := createAgent(t, s, b, bKey, "B's agent", true)
	bFolder := createFolder(t, s, b, bKey, "B's folder", nil)

	agent, live := createAgent(t, s, a, aKey, "A's secret agent", true)
	draft := createRevision(t, s, aKey, agent, "A's draft", nil)
	folder := createFolder(t, s, a, aKey, "A's folder", nil)
	if r := s.Do(t, "POST", "/v2/teams/"+a+"/agent-folders/move-agents", aKey, map[string]any{"agent_ids": []string{agent}, "folder_id": folder}); r.Status != 200 {
		t.Fatal(r.Status)
	}
	aMember, _ := s.Member(t, store.RoleMember)
	aMemberKeyID := keyID(t, s, aMember)

	snapshot := func(t *testing.T) string {
		t.Helper()
		ag, err := s.Store.GetAgent(ctx, a, agent, s.OwnerID)
		if err != nil {
			t.Fatal(err)
		}
		builds, _, _ := s.Store.ListBuilds(ctx, a, agent, 100, 0)
		folders, _ := s.Store.ListFolders(ctx, a)
		keys, _, _ := s.Store.ListAPIKeys(ctx, a, 100, 0)
		for i := range keys {
			keys[i].LastUsedAt = nil // reading with a key touches it; that is not a change of A's data
		}
		j, _ := json.Marshal([]any{ag, builds, folders, keys})
		return string(j)
	}
	before := snapshot(t)

	patch := map[string]any{"name": "Owned by B"}
	scenarios := []scenario{
		// Team-scoped paths naming A.
		notFound("getTeam", "GET", "/v2/teams/"+a, bKey, nil),
		notFound("listTeamMembers", "GET", "/v2/teams/"+a+"/members", bKey, nil),
		notFound("listAgents", "GET", "/v2/teams/"+a+"/agents", bKey, nil),
		notFound("createAgent", "POST", "/v2/teams/"+a+"/agents", bKey, map[string]any{"name": "planted"}),
		notFound("listAgentFolders", "GET", "/v2/teams/"+a+"/agent-folders", bKey, nil),
		notFound("createAgentFolder", "POST", "/v2/teams/"+a+"/agent-folders", bKey, map[string]any{"name": "planted"}),
		notFound("moveAgentsToFolder in A", "POST", "/v2/teams/"+a+"/agent-folders/move-agents", bKey, map[string]any{"agent_ids": []string{agent}, "folder_id": nil}),
		notFound("listApiKeys", "GET", "/v2/teams/"+a+"/api-keys", bKey, nil),
		notFound("createApiKey", "POST", "/v2/teams/"+a+"/api-keys", bKey, map[string]any{"name": "planted"}),
		notFound("revokeApiKey", "DELETE", "/v2/teams/"+a+"/api-keys/"+aMemberKeyID, bKey, nil),
		notFound("listAuditLog", "GET", "/v2/teams/"+a+"/audit-log", bKey, nil),
		// Ids of A's resources on paths that carry no team.
		notFound("getAgent", "GET", "/v2/agents/"+agent, bKey, nil),
		notFound("updateAgent", "PATCH", "/v2/agents/"+agent, bKey, patch),
		notFound("updateAgent pin", "PATCH", "/v2/agents/"+agent, bKey, map[string]any{"pinned": true}),
		notFound("deleteAgent", "DELETE", "/v2/agents/"+agent, bKey, nil),
		notFound("moveAgent", "POST", "/v2/agents/"+agent+"/move", bKey, map[string]any{"target_team_id": b}),
		notFound("listAgentRevisions", "GET", "/v2/agents/"+agent+"/revisions", bKey, nil),
		notFound("createRevision", "POST", "/v2/agents/"+agent+"/revisions", bKey, map[string]any{"name": "planted", "config": setupConfig("x")}),
		notFound("getRevision", "GET", "/v2/agents/"+agent+"/revisions/"+live, bKey, nil),
		notFound("getRevision under B's agent", "GET", "/v2/agents/"+bAgent+"/revisions/"+live, bKey, nil),
		notFound("updateRevision", "PATCH", "/v2/revisions/"+draft, bKey, map[string]any{"revision_name": "B"}),
		notFound("promoteRevision", "POST", "/v2/revisions/"+draft+"/promote", bKey, nil),
		notFound("updateAgentFolder", "PATCH", "/v2/agent-folders/"+folder, bKey, patch),
		notFound("deleteAgentFolder", "DELETE", "/v2/agent-folders/"+folder+"?force=true", bKey, nil),
		// A's ids smuggled into B's own requests.
		notFound("moveAgentsToFolder: A's agent into B's folder", "POST", "/v2/teams/"+b+"/agent-folders/move-agents", bKey,
			map[string]any{"agent_ids": []string{agent}, "folder_id": bFolder}),
		notFound("moveAgentsToFolder: B's agent into A's folder", "POST", "/v2/teams/"+b+"/agent-folders/move-agents", bKey,
			map[string]any{"agent_ids": []string{bAgent}, "folder_id": folder}),
		notFound("revokeApiKey: A's key under B's team", "DELETE", "/v2/teams/"+b+"/api-keys/"+aMemberKeyID, bKey, nil),
		badRequest("createAgent copying A's setup", "POST", "/v2/teams/"+b+"/agents", bKey, map[string]any{"name": "thief", "source_build_id": live}, "source_build_id"),
		badRequest("createRevision copying A's setup", "POST", "/v2/agents/"+bAgent+"/revisions", bKey, map[string]any{"name": "thief", "source_build_id": live}, "source_build_id"),
		badRequest("createRevision handing over to A's agent", "POST", "/v2/agents/"+bAgent+"/revisions", bKey,
			map[string]any{"name": "x", "config": setupConfig("x"), "handover_target_ids": []string{agent}}, "handover_target_ids"),
		badRequest("createAgentFolder inside A's folder", "POST", "/v2/teams/"+b+"/agent-folders", bKey, map[string]any{"name": "x", "parent_folder_id": folder}, "parent_folder_id"),
		badRequest("updateAgentFolder under A's folder", "PATCH", "/v2/agent-folders/"+bFolder, bKey, map[string]any{"parent_folder_id": folder}, "parent_folder_id"),
		{name: "createApiKey for A's user", method: "POST", path: "/v2/teams/" + b + "/api-keys", key: bKey, body: map[string]any{"name": "x", "user_id": s.OwnerID},
			wantStatus: 400, wantError: "invalid_request", wantContains: []string{"user_id"}},
	}
	runScenarios(t, s, scenarios)

	t.Run("B's lists hold nothing of A's", func(t *testing.T) {
		for _, path := range []string{"/v2/teams", "/v2/teams/" + b + "/agents", "/v2/teams/" + b + "/agent-folders", "/v2/teams/" + b + "/members",
			"/v2/teams/" + b + "/api-keys", "/v2/teams/" + b + "/audit-log?limit=100", "/v2/agents/" + bAgent + "/revisions", "/v2/profile"} {
			r := s.Do(t, "GET", path, bKey, nil)
			if r.Status != 200 {
				t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
			}
			for _, secret := range []string{a, agent, live, draft, folder, aMemberKeyID, "A's", "admin@localhost"} {
				if strings.Contains(string(r.Body), secret) {
					t.Errorf("GET %s with B's key shows %q of team A: %s", path, secret, r.Body)
				}
			}
		}
	})
	t.Run("A's data did not change", func(t *testing.T) {
		if after := snapshot(t); after != before {
			t.Fatalf("team A changed:\nbefore %s\nafter  %s", before, after)
		}
		if _, total, _ := s.Store.ListAgents(ctx, a, "", store.AgentFilter{Limit: 100}); total != 1 {
			t.Fatalf("team A has %d agents, want 1", total)
		}
		if r := s.Do(t, "GET", "/v2/profile", aMember, nil); r.Status != 200 {
			t.Fatalf("A's member key stopped working: %d", r.Status)
		}
	})
	t.Run("A's audit log has no entry by B", func(t *testing.T) {
		bKeyID := keyID(t, s, bKey)
		p := audit(t, s, a, aKey, url.Values{"actor": {bKeyID}})
		if p.Total != 0 {
			t.Fatalf("team A's log has %d entries by B's key: %+v", p.Total, p.Entries)
		}
		for _, e := range audit(t, s, b, bKey, url.Values{}).Entries {
			if e.TeamID != b {
				t.Fatalf("team B's log shows an entry of team %s", e.TeamID)
			}
		}
	})
}
