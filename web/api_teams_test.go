package web_test

import (
	"strings"
	"testing"

	"docket/internal/testkit"
)

func TestListMyTeams(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	scenarios := []scenario{
		{name: "owner sees its team with its role", method: "GET", path: "/v2/teams", key: w.owner, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "listMyTeams body", m, "teams")
				teams := m["teams"].([]any)
				if len(teams) != 1 {
					t.Fatalf("teams = %v, want only the key's team", teams)
				}
				team := teams[0].(map[string]any)
				if team["id"] != w.team || team["name"] != "Default" || team["role"] != "owner" {
					t.Fatalf("team = %v, want the Default team with role owner", team)
				}
				if v, ok := team["organization_id"]; !ok || v != nil {
					t.Fatalf("organization_id = %v (present %v), want null", v, ok)
				}
			}},
		{name: "a viewer sees the same team as viewer", method: "GET", path: "/v2/teams", key: w.viewer, wantStatus: 200,
			wantContains: []string{w.team, `"role":"viewer"`}},
		{name: "the other team's key sees only its own team", method: "GET", path: "/v2/teams", key: w.otherKey, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				if strings.Contains(string(r.Body), w.team) || !strings.Contains(string(r.Body), w.otherTeam) {
					t.Fatalf("team B's key listed %s", r.Body)
				}
			}},
	}
	// listMyTeams takes no input, so it has no 400; it needs no role, so no 403; and it
	// names no id, so no 404.
	scenarios = append(scenarios, unauthenticated("GET", "/v2/teams", nil)...)
	runScenarios(t, s, scenarios)
}

func TestGetTeam(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	scenarios := []scenario{
		{name: "200 with the reference's fields", method: "GET", path: "/v2/teams/" + w.team, key: w.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "getTeam body", m, "team")
				team := m["team"].(map[string]any)
				for _, k := range []string{"id", "name", "created_at", "organization_id", "slack_team_id", "discovery_mode"} {
					if _, ok := team[k]; !ok {
						t.Errorf("team lacks %q: %v", k, team)
					}
				}
				if team["id"] != w.team || team["name"] != "Default" {
					t.Fatalf("team = %v", team)
				}
			}},
		notFound("404 for another team", "GET", "/v2/teams/"+w.otherTeam, w.owner, nil),
		notFound("404 for a random id", "GET", "/v2/teams/"+randomID(), w.owner, nil),
	}
	// getTeam's only input is the path id, which answers 404 rather than 400 (the
	// reference lists no 400 for it either); every role may read, so no 403.
	scenarios = append(scenarios, unauthenticated("GET", "/v2/teams/"+w.team, nil)...)
	runScenarios(t, w.s, scenarios)
}

func TestListTeamMembers(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	base := "/v2/teams/" + w.team + "/members"
	scenarios := []scenario{
		{name: "200 lists every member with role, envelope key for key", method: "GET", path: base, key: w.viewer, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "listTeamMembers body", m, "members", "total", "limit", "offset")
				// Default owner, admin, member, viewer, and team B's owner (a viewer here).
				if m["total"] != float64(5) || m["limit"] != float64(50) || m["offset"] != float64(0) {
					t.Fatalf("total/limit/offset = %v/%v/%v, want 5/50/0", m["total"], m["limit"], m["offset"])
				}
				roles := map[string]int{}
				for _, it := range m["members"].([]any) {
					mem := it.(map[string]any)
					wantKeys(t, "member", mem, "id", "name", "email", "role", "inheritedFromOrg")
					roles[mem["role"].(string)]++
				}
				if roles["owner"] != 1 || roles["admin"] != 1 || roles["member"] != 1 || roles["viewer"] != 2 {
					t.Fatalf("roles = %v", roles)
				}
			}},
		{name: "search narrows by email", method: "GET", path: base + "?search=admin%40localhost", key: w.owner, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				if m["total"] != float64(1) || len(m["members"].([]any)) != 1 {
					t.Fatalf("search admin@localhost: %s", r.Body)
				}
			}},
		{name: "limit and offset page", method: "GET", path: base + "?limit=2&offset=4", key: w.owner, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				if m["total"] != float64(5) || m["limit"] != float64(2) || m["offset"] != float64(4) || len(m["members"].([]any)) != 1 {
					t.Fatalf("page limit=2 offset=4: %s", r.Body)
				}
			}},
		badRequest("400 limit=0", "GET", base+"?limit=0", w.owner, nil, "limit"),
		badRequest("400 limit=101", "GET", base+"?limit=101", w.owner, nil, "limit"),
		badRequest("400 offset=-1", "GET", base+"?offset=-1", w.owner, nil, "offset"),
		badRequest("400 search too long", "GET", base+"?search="+strings.Repeat("x", 201), w.owner, nil, "search"),
		notFound("404 for another team", "GET", "/v2/teams/"+w.otherTeam+"/members", w.owner, nil),
		notFound("404 for a random team", "GET", "/v2/teams/"+randomID()+"/members", w.owner, nil),
	}
	scenarios = append(scenarios, unauthenticated("GET", base, nil)...)
	runScenarios(t, w.s, scenarios)
}

func TestGetProfile(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	scenarios := []scenario{
		{name: "owner", method: "GET", path: "/v2/profile", key: w.owner, wantStatus: 200,
			after: func(t *testing.T, r *testkit.Response) {
				m := r.JSON(t)
				wantKeys(t, "getProfile body", m, "profile")
				p := m["profile"].(map[string]any)
				if p["id"] != w.s.OwnerID || p["email"] != "admin@localhost" || p["teamId"] != w.team || p["role"] != "owner" || p["name"] != "Administrator" {
					t.Fatalf("profile = %v", p)
				}
			}},
		{name: "viewer sees itself", method: "GET", path: "/v2/profile", key: w.viewer, wantStatus: 200,
			wantContains: []string{`"role":"viewer"`, `"teamId":"` + w.team + `"`}},
		{name: "team B's key acts in team B", method: "GET", path: "/v2/profile", key: w.otherKey, wantStatus: 200,
			wantContains: []string{`"teamId":"` + w.otherTeam + `"`, `"role":"owner"`}},
	}
	// getProfile takes no input (no 400), any role may call it (no 403) and it names no
	// id (no 404).
	scenarios = append(scenarios, unauthenticated("GET", "/v2/profile", nil)...)
	runScenarios(t, w.s, scenarios)
}
