package web_test

import (
	"context"
	"strings"
	"testing"

	"docket/internal/testkit"
	"docket/store"
)

func TestListApiKeys(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	base := "/v2/teams/" + w.team + "/api-keys"
	scenarios := []scenario{
		{name: "200 lists keys without secrets, envelope key for key", method: "GET", path: base, key: w.admin, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "listApiKeys body", m, "api_keys", "total", "limit", "offset")
				// owner, admin, member and viewer keys of this team; team B's key is not here.
				if m["total"] != float64(4) || m["limit"] != float64(20) || m["offset"] != float64(0) {
					t.Fatalf("total/limit/offset = %v/%v/%v", m["total"], m["limit"], m["offset"])
				}
				for _, raw := range []string{w.owner, w.admin, w.member, w.viewer, w.otherKey} {
					if strings.Contains(string(r.Body), raw) || strings.Contains(string(r.Body), raw[10:]) {
						t.Fatal("a key's secret is in the list")
					}
				}
				k := m["api_keys"].([]any)[0].(map[string]any)
				wantKeys(t, "api key", k, "id", "name", "prefix", "team_id", "user_id", "user_email", "created_at", "last_used_at", "revoked_at")
				if k["team_id"] != w.team {
					t.Fatalf("key of team %v listed", k["team_id"])
				}
				if !strings.Contains(string(r.Body), `"id":"`+w.ownerKeyID+`"`) || !strings.Contains(string(r.Body), `"prefix":"`+w.owner[:10]+`"`) {
					t.Fatalf("owner key (prefix %s) not listed: %s", w.owner[:10], r.Body)
				}
			}},
		{name: "limit=1 offset=3", method: "GET", path: base + "?limit=1&offset=3", key: w.owner, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				if m["total"] != float64(4) || len(m["api_keys"].([]any)) != 1 || m["limit"] != float64(1) || m["offset"] != float64(3) {
					t.Fatalf("page = %s", r.Body)
				}
			}},
		badRequest("400 limit=0", "GET", base+"?limit=0", w.owner, nil, "limit"),
		badRequest("400 limit=101", "GET", base+"?limit=101", w.owner, nil, "limit"),
		forbidden("403 member (admin-only)", "GET", base, w.member, nil, "listApiKeys"),
		forbidden("403 viewer", "GET", base, w.viewer, nil, "listApiKeys"),
		notFound("404 another team", "GET", "/v2/teams/"+w.otherTeam+"/api-keys", w.owner, nil),
		notFound("404 random team", "GET", "/v2/teams/"+randomID()+"/api-keys", w.owner, nil),
	}
	scenarios = append(scenarios, unauthenticated("GET", base, nil)...)
	runScenarios(t, s, scenarios)
}

func TestCreateApiKey(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	ctx := context.Background()
	base := "/v2/teams/" + w.team + "/api-keys"
	_, viewerID := s.Member(t, store.RoleViewer)
	_, ownerID2 := s.Member(t, store.RoleOwner)
	scenarios := []scenario{
		{name: "201 shows the key once and it works at once", method: "POST", path: base, key: w.admin, body: map[string]any{"name": "ci"}, wantStatus: 201,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "createApiKey body", m, "api_key", "key")
				raw := m["key"].(string)
				k := m["api_key"].(map[string]any)
				if !strings.HasPrefix(raw, "dk_") || len(raw) < 40 || k["prefix"] != raw[:10] || k["name"] != "ci" || k["team_id"] != w.team {
					t.Fatalf("created = %s", r.Body)
				}
				pr := s.Do(t, "GET", "/v2/profile", raw, nil)
				if pr.Status != 200 || !strings.Contains(string(pr.Body), `"role":"admin"`) {
					t.Fatalf("new key: %d %s; want it to act as its admin creator", pr.Status, pr.Body)
				}
				// Shown once: no later response carries the secret.
				lr := s.Do(t, "GET", base, w.owner, nil)
				if lr.Status != 200 || strings.Contains(string(lr.Body), raw) || !strings.Contains(string(lr.Body), k["id"].(string)) {
					t.Fatalf("list after create: %d %s", lr.Status, lr.Body)
				}
				wantAudited(t, s, w.team, "createApiKey", k["id"].(string), keyID(t, s, w.admin), "success")
				entries, _, _ := s.Store.ListAudit(ctx, w.team, store.AuditFilter{Operation: "createApiKey", Limit: 10})
				for _, e := range entries {
					if strings.Contains(string(e.Detail), raw) {
						t.Fatal("the secret reached the audit log")
					}
				}
			}},
		{name: "201 for another member, carrying their role", method: "POST", path: base, key: w.owner, body: map[string]any{"name": "bot", "user_id": viewerID}, wantStatus: 201,
			after: func(t *testing.T, r *testkit.Response) {
				raw := r.JSON(t)["key"].(string)
				if pr := s.Do(t, "POST", "/v2/teams/"+w.team+"/agents", raw, map[string]any{"name": "x"}); pr.Status != 403 {
					t.Fatalf("a viewer's key created an agent: %d", pr.Status)
				}
			}},
		{name: "403 a key above the creator's role", method: "POST", path: base, key: w.admin, body: map[string]any{"name": "escalate", "user_id": ownerID2},
			wantStatus: 403, wantError: "forbidden", wantContains: []string{"user_id"}},
		badRequest("400 name missing", "POST", base, w.owner, map[string]any{}, "name"),
		badRequest("400 name empty", "POST", base, w.owner, map[string]any{"name": ""}, "name"),
		badRequest("400 user not a member", "POST", base, w.owner, map[string]any{"name": "x", "user_id": randomID()}, "user_id"),
		badRequest("400 unknown field", "POST", base, w.owner, map[string]any{"name": "x", "role": "owner"}, "role"),
		forbidden("403 member (admin-only)", "POST", base, w.member, map[string]any{"name": "x"}, "createApiKey"),
		forbidden("403 viewer", "POST", base, w.viewer, map[string]any{"name": "x"}, "createApiKey"),
		notFound("404 another team", "POST", "/v2/teams/"+w.otherTeam+"/api-keys", w.owner, map[string]any{"name": "x"}),
		notFound("404 random team", "POST", "/v2/teams/"+randomID()+"/api-keys", w.owner, map[string]any{"name": "x"}),
	}
	scenarios = append(scenarios, unauthenticated("POST", base, map[string]any{"name": "x"})...)
	runScenarios(t, s, scenarios)
	t.Run("only the two successful creates made keys", func(t *testing.T) {
		// 4 from the world, 2 from Member above, 2 created here.
		if _, total, _ := s.Store.ListAPIKeys(ctx, w.team, 100, 0); total != 8 {
			t.Fatalf("keys = %d, want 8", total)
		}
		if _, total, _ := s.Store.ListAPIKeys(ctx, w.otherTeam, 100, 0); total != 1 {
			t.Fatalf("team B's keys = %d, want 1", total)
		}
	})
}

func TestRevokeApiKey(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	ctx := context.Background()
	victim, _ := s.Member(t, store.RoleMember)
	victimID := keyID(t, s, victim)
	otherKeyID := keyID(t, s, w.otherKey)
	path := "/v2/teams/" + w.team + "/api-keys/" + victimID
	scenarios := []scenario{
		{name: "the key works before", method: "GET", path: "/v2/profile", key: victim, wantStatus: 200},
		badRequest("400 malformed id", "DELETE", "/v2/teams/"+w.team+"/api-keys/dk_abc", w.owner, nil, "key_id"),
		forbidden("403 member (admin-only)", "DELETE", path, w.member, nil, "revokeApiKey"),
		forbidden("403 viewer", "DELETE", path, w.viewer, nil, "revokeApiKey"),
		forbidden("403 a member revoking their own key", "DELETE", path, victim, nil, "revokeApiKey"),
		notFound("404 another team's key under our team", "DELETE", "/v2/teams/"+w.team+"/api-keys/"+otherKeyID, w.owner, nil),
		notFound("404 another team's path", "DELETE", "/v2/teams/"+w.otherTeam+"/api-keys/"+otherKeyID, w.owner, nil),
		notFound("404 random id", "DELETE", "/v2/teams/"+w.team+"/api-keys/"+randomID(), w.owner, nil),
	}
	scenarios = append(scenarios, unauthenticated("DELETE", path, nil)...)
	scenarios = append(scenarios,
		scenario{name: "the key still works after refusals", method: "GET", path: "/v2/profile", key: victim, wantStatus: 200},
		scenario{name: "200 revokes", method: "DELETE", path: path, key: w.admin, wantStatus: 200, wantContains: []string{`"success":true`},
			after: func(t *testing.T, r *testkit.Response) {
				keys, _, _ := s.Store.ListAPIKeys(ctx, w.team, 100, 0)
				for _, k := range keys {
					if k.ID == victimID && k.RevokedAt == nil {
						t.Fatal("revoked_at not set")
					}
				}
				wantAudited(t, s, w.team, "revokeApiKey", victimID, keyID(t, s, w.admin), "success")
			}},
		scenario{name: "401 with the revoked key", method: "GET", path: "/v2/profile", key: victim, wantStatus: 401, wantError: "unauthorized", wantContains: []string{"revoked"}},
		scenario{name: "401 with the revoked key on a write", method: "POST", path: "/v2/teams/" + w.team + "/agents", key: victim, body: map[string]any{"name": "x"},
			wantStatus: 401, wantError: "unauthorized"},
		scenario{name: "the list shows revoked_at", method: "GET", path: "/v2/teams/" + w.team + "/api-keys", key: w.owner, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				for _, it := range r.JSON(t)["api_keys"].([]any) {
					k := it.(map[string]any)
					if k["id"] == victimID && k["revoked_at"] == nil {
						t.Fatalf("revoked key listed without revoked_at: %v", k)
					}
				}
			}},
		scenario{name: "200 revoking twice is a no-op", method: "DELETE", path: path, key: w.owner, wantStatus: 200},
	)
	runScenarios(t, s, scenarios)
	if r := s.Do(t, "GET", "/v2/profile", w.otherKey, nil); r.Status != 200 {
		t.Fatalf("team B's key stopped working: %d", r.Status)
	}
}
