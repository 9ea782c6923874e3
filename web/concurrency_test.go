package web_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"docket/internal/testkit"
	"docket/store"
)

// TestConcurrentCreates sends 50 createAgent requests at once over HTTP, from several
// keys, half with a first setup. None may fail with a 5xx (SQLITE_BUSY, a lost write),
// every agent must exist, and the audit log must hold exactly one entry for each. Run
// under -race it also checks the handlers and middleware share nothing unsafely.
func TestConcurrentCreates(t *testing.T) {
	const n = 50
	s := testkit.StartServer(t, testkit.Options{})
	keys := []string{s.OwnerKey}
	for range 4 {
		k, _ := s.Member(t, store.RoleMember)
		keys = append(keys, k)
	}
	type result struct {
		status int
		id     string
		err    error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"name":"parallel %02d"}`, i)
			if i%2 == 1 {
				body = fmt.Sprintf(`{"name":"parallel %02d","build":{"name":"v1","config":{"version":"v2","data":{"models":{"agent":{"model":"qwen3:4b"}},"input":"SOP %d"}}}}`, i, i)
			}
			req, err := http.NewRequest("POST", s.URL+"/v2/teams/"+s.TeamID+"/agents", strings.NewReader(body))
			if err != nil {
				results[i].err = err
				return
			}
			req.Header.Set("Authorization", "Bearer "+keys[i%len(keys)])
			req.Header.Set("Content-Type", "application/json")
			<-start
			resp, err := s.Client.Do(req)
			if err != nil {
				results[i].err = err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			results[i].status, results[i].err = resp.StatusCode, err
			var out struct{ Agent struct{ ID string } }
			if json.Unmarshal(b, &out) == nil {
				results[i].id = out.Agent.ID
			}
			if resp.StatusCode != 201 {
				results[i].err = fmt.Errorf("status %d: %s", resp.StatusCode, b)
			}
		}()
	}
	close(start)
	wg.Wait()

	ids := map[string]bool{}
	for i, r := range results {
		if r.status >= 500 {
			t.Errorf("request %d: server error %d", i, r.status)
		}
		if r.err != nil {
			t.Errorf("request %d: %v", i, r.err)
			continue
		}
		ids[r.id] = true
	}
	if t.Failed() {
		t.FailNow()
	}
	if len(ids) != n {
		t.Fatalf("%d distinct agents created, want %d", len(ids), n)
	}

	r := s.Do(t, "GET", "/v2/teams/"+s.TeamID+"/agents?limit=100", s.OwnerKey, nil)
	var list struct {
		Agents []struct {
			ID          string
			LatestBuild *struct{ ID string } `json:"latest_build"`
		}
		Total int
	}
	r.Decode(t, &list)
	withBuild := 0
	for _, a := range list.Agents {
		if !ids[a.ID] {
			t.Errorf("listed agent %s was not created by this test", a.ID)
		}
		if a.LatestBuild != nil {
			withBuild++
		}
	}
	if list.Total != n || len(list.Agents) != n || withBuild != n/2 {
		t.Fatalf("listAgents: total %d, %d listed, %d with a setup; want %d, %d, %d", list.Total, len(list.Agents), withBuild, n, n, n/2)
	}

	p := audit(t, s, s.TeamID, s.OwnerKey, url.Values{"operation": {"createAgent"}})
	if p.Total != n {
		t.Fatalf("audit has %d createAgent entries, want %d", p.Total, n)
	}
	audited := map[string]bool{}
	for _, e := range p.Entries {
		if e.Channel != "api" || e.Outcome != "success" || e.Actor.APIKeyID == nil {
			t.Fatalf("entry = %+v", e)
		}
		audited[e.Target.ID] = true
	}
	for id := range ids {
		if !audited[id] {
			t.Errorf("agent %s has no audit entry", id)
		}
	}
	if broken, rows, err := s.Store.VerifyAudit(t.Context()); err != nil || broken != nil {
		t.Fatalf("audit chain after concurrent writes (%d rows): %+v %v", rows, broken, err)
	}
}
