package web_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"docket/internal/testkit"
)

// referenceCopy is the Duvo v2 OpenAPI document docket follows, kept with the tests
// (gzipped) so the suite runs on any clone; sharedReference is where the team keeps the
// original, beside the repository, when it is there.
var (
	referenceCopy   = filepath.Join("testdata", "duvo-openapi.json.gz")
	sharedReference = filepath.Join("..", "..", "shared", "reference", "duvo-openapi.json")
)

// oasDoc is an OpenAPI document read generically, with its own $ref resolution.
type oasDoc struct {
	name string
	root map[string]any
}

func readReferenceCopy(t *testing.T) []byte {
	t.Helper()
	f, err := os.Open(referenceCopy)
	if err != nil {
		t.Fatalf("the reference OpenAPI document is missing: %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", referenceCopy, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", referenceCopy, err)
	}
	return b
}

func loadReference(t *testing.T) *oasDoc {
	t.Helper()
	return parseDoc(t, "reference", readReferenceCopy(t))
}

// TestReferenceCopyIsCurrent: the copy the tests use is the team's reference document,
// byte for byte, wherever the original is beside the checkout. Refresh it with
// gzip -9 -c ../shared/reference/duvo-openapi.json > web/testdata/duvo-openapi.json.gz
func TestReferenceCopyIsCurrent(t *testing.T) {
	shared, err := os.ReadFile(sharedReference)
	if errors.Is(err, fs.ErrNotExist) {
		t.Logf("no %s beside this checkout; the copy in %s stands alone", sharedReference, referenceCopy)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shared, readReferenceCopy(t)) {
		t.Fatalf("%s differs from %s: refresh the copy (see this test's comment)", referenceCopy, sharedReference)
	}
}

func parseDoc(t *testing.T, name string, b []byte) *oasDoc {
	t.Helper()
	var root map[string]any
	if err := json.Unmarshal(b, &root); err != nil {
		t.Fatalf("%s OpenAPI document is not JSON: %v", name, err)
	}
	return &oasDoc{name: name, root: root}
}

// resolve follows $ref (local refs only) until it reaches a schema.
func (d *oasDoc) resolve(t *testing.T, v any) map[string]any {
	t.Helper()
	m, _ := v.(map[string]any)
	for seen := 0; m != nil; seen++ {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		if seen > 32 || !strings.HasPrefix(ref, "#/") {
			t.Fatalf("%s: cannot resolve $ref %q", d.name, ref)
		}
		var cur any = d.root
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
			cur = cur.(map[string]any)[part]
		}
		m, _ = cur.(map[string]any)
	}
	return m
}

type opRef struct {
	method, path string
	op           map[string]any
}

func (d *oasDoc) operations() map[string]opRef {
	out := map[string]opRef{}
	paths, _ := d.root["paths"].(map[string]any)
	for p, item := range paths {
		for method, op := range item.(map[string]any) {
			o, ok := op.(map[string]any)
			if !ok {
				continue
			}
			if id, ok := o["operationId"].(string); ok {
				out[id] = opRef{method: strings.ToUpper(method), path: p, op: o}
			}
		}
	}
	return out
}

// responseSchema is the JSON schema of an operation's 200 or 201 response.
func (d *oasDoc) responseSchema(t *testing.T, op opRef, status string) map[string]any {
	t.Helper()
	responses, _ := op.op["responses"].(map[string]any)
	r := d.resolve(t, responses[status])
	if r == nil {
		t.Fatalf("%s: %s %s has no %s response", d.name, op.method, op.path, status)
	}
	content, _ := r["content"].(map[string]any)
	media, _ := content["application/json"].(map[string]any)
	s := d.resolve(t, media["schema"])
	if s == nil {
		t.Fatalf("%s: %s %s's %s response has no JSON schema", d.name, op.method, op.path, status)
	}
	return s
}

// foundationOps are the operations this issue implements: operation id, method and path.
// Those the reference defines must match it; the rest are docket's own.
var foundationOps = map[string][2]string{
	"listMyTeams":        {"GET", "/v2/teams"},
	"getTeam":            {"GET", "/v2/teams/{teamId}"},
	"listTeamMembers":    {"GET", "/v2/teams/{teamId}/members"},
	"getProfile":         {"GET", "/v2/profile"},
	"listAgents":         {"GET", "/v2/teams/{teamId}/agents"},
	"createAgent":        {"POST", "/v2/teams/{teamId}/agents"},
	"getAgent":           {"GET", "/v2/agents/{agent_id}"},
	"updateAgent":        {"PATCH", "/v2/agents/{agent_id}"},
	"deleteAgent":        {"DELETE", "/v2/agents/{agent_id}"},
	"moveAgent":          {"POST", "/v2/agents/{agent_id}/move"},
	"listAgentFolders":   {"GET", "/v2/teams/{teamId}/agent-folders"},
	"createAgentFolder":  {"POST", "/v2/teams/{teamId}/agent-folders"},
	"updateAgentFolder":  {"PATCH", "/v2/agent-folders/{folder_id}"},
	"deleteAgentFolder":  {"DELETE", "/v2/agent-folders/{folder_id}"},
	"moveAgentsToFolder": {"POST", "/v2/teams/{teamId}/agent-folders/move-agents"},
	"listAgentRevisions": {"GET", "/v2/agents/{agent_id}/revisions"},
	"createRevision":     {"POST", "/v2/agents/{agent_id}/revisions"},
	"getRevision":        {"GET", "/v2/agents/{agent_id}/revisions/{build_id}"},
	"updateRevision":     {"PATCH", "/v2/revisions/{build_id}"},
	"promoteRevision":    {"POST", "/v2/revisions/{build_id}/promote"},
	"listApiKeys":        {"GET", "/v2/teams/{teamId}/api-keys"},
	"createApiKey":       {"POST", "/v2/teams/{teamId}/api-keys"},
	"revokeApiKey":       {"DELETE", "/v2/teams/{teamId}/api-keys/{key_id}"},
	"listAuditLog":       {"GET", "/v2/teams/{teamId}/audit-log"},
}

// jobsOps are the Jobs issue's operations that the reference defines.
var jobsOps = map[string][2]string{
	"startRun":              {"POST", "/v2/teams/{teamId}/runs"},
	"listRuns":              {"GET", "/v2/teams/{teamId}/runs"},
	"getRun":                {"GET", "/v2/runs/{run_id}"},
	"listRunMessages":       {"GET", "/v2/runs/{run_id}/messages"},
	"postRunMessage":        {"POST", "/v2/runs/{run_id}/messages"},
	"respondToHumanRequest": {"POST", "/v2/runs/{run_id}/human-requests/{request_id}/respond"},
	"stopRun":               {"POST", "/v2/runs/{run_id}/stop"},
	"listAgentMemoryFiles":  {"GET", "/v2/agents/{agent_id}/memory/files"},
	"getAgentMemoryFile":    {"GET", "/v2/agents/{agent_id}/memory/files/{*}"},
}

// triggerOps are the case-trigger operations (queueOps and casesOps are beside their
// tests).
var triggerOps = map[string][2]string{
	"listAgentCaseTriggers":            {"GET", "/v2/agents/{agent_id}/case-triggers"},
	"createAgentCaseTrigger":           {"POST", "/v2/agents/{agent_id}/case-triggers"},
	"previewAgentCaseTriggerConflicts": {"GET", "/v2/agents/{agent_id}/case-triggers/conflict-preview"},
	"getAgentCaseTrigger":              {"GET", "/v2/agents/{agent_id}/case-triggers/{trigger_id}"},
	"updateAgentCaseTrigger":           {"PATCH", "/v2/agents/{agent_id}/case-triggers/{trigger_id}"},
	"deleteAgentCaseTrigger":           {"DELETE", "/v2/agents/{agent_id}/case-triggers/{trigger_id}"},
}

// scheduleOps are the schedule operations; inboundTriggerOps are the reference's
// integration triggers, which docket maps to inbound webhook URLs.
var (
	scheduleOps = map[string][2]string{
		"listAgentSchedules": {"GET", "/v2/agents/{agent_id}/schedules"},
		"createSchedule":     {"POST", "/v2/agents/{agent_id}/schedules"},
		"updateSchedule":     {"PATCH", "/v2/agents/{agent_id}/schedules/{schedule_id}"},
		"deleteSchedule":     {"DELETE", "/v2/agents/{agent_id}/schedules/{schedule_id}"},
	}
	inboundTriggerOps = map[string][2]string{
		"listAgentTriggers":     {"GET", "/v2/triggers/{agentId}"},
		"upsertAgentTrigger":    {"PUT", "/v2/triggers/{agentId}"},
		"listAgentTriggerTypes": {"GET", "/v2/trigger-config/{agentId}"},
	}
)

// publicOps authenticate themselves (a hook URL's token is its credential): they must
// declare no API-key security.
var publicOps = map[string]bool{"receiveHook": true}

// docketOps are docket's own operations: they must be published, secured, and never
// take an operation id the reference uses for something else.
var docketOps = map[string][2]string{
	"listHumanRequests":       {"GET", "/v2/teams/{teamId}/human-requests"},
	"streamRunEvents":         {"GET", "/v2/runs/{run_id}/events"},
	"listWebhooks":            {"GET", "/v2/teams/{teamId}/webhooks"},
	"createWebhook":           {"POST", "/v2/teams/{teamId}/webhooks"},
	"updateWebhook":           {"PATCH", "/v2/teams/{teamId}/webhooks/{webhook_id}"},
	"deleteWebhook":           {"DELETE", "/v2/teams/{teamId}/webhooks/{webhook_id}"},
	"testWebhook":             {"POST", "/v2/teams/{teamId}/webhooks/{webhook_id}/test"},
	"listWebhookDeliveries":   {"GET", "/v2/teams/{teamId}/webhook-deliveries"},
	"getWebhookSigningSecret": {"GET", "/v2/teams/{teamId}/webhooks/signing-secret"},
	"receiveHook":             {"POST", "/v2/hooks/{token}"},
	"bulkAddCaseLabels":       {"POST", "/v2/queues/{queue_id}/cases/bulk-add-labels"},
}

func fetchOpenAPI(t *testing.T, s *testkit.Server) *oasDoc {
	t.Helper()
	r := s.Do(t, "GET", "/v2/openapi.json", "", nil)
	if r.Status != 200 {
		t.Fatalf("GET /v2/openapi.json: %d %s", r.Status, r.Body)
	}
	return parseDoc(t, "docket", r.Body)
}

func TestOpenAPIOperationsMatchReference(t *testing.T) {
	ref := loadReference(t)
	s := testkit.StartServer(t, testkit.Options{})
	doc := fetchOpenAPI(t, s)
	if v, _ := doc.root["openapi"].(string); !strings.HasPrefix(v, "3.1") {
		t.Fatalf("openapi version = %q, want 3.1.x", v)
	}
	ours, theirs := doc.operations(), ref.operations()
	all := map[string][2]string{}
	for id := range docketOps {
		if _, ok := theirs[id]; ok {
			t.Errorf("%s is a reference operation; docket-only ids must not clash", id)
		}
	}
	for _, table := range []map[string][2]string{foundationOps, jobsOps, queueOps, casesOps, triggerOps, filesOps, scheduleOps, inboundTriggerOps, docketOps} {
		for id, op := range table {
			all[id] = op
		}
	}
	ids := make([]string, 0, len(all))
	for id := range all {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		want := all[id]
		if r, ok := theirs[id]; ok && (r.method != want[0] || r.path != want[1]) {
			t.Fatalf("test table disagrees with the reference: %s is %s %s there", id, r.method, r.path)
		}
		got, ok := ours[id]
		if !ok {
			t.Errorf("operationId %s is missing from /v2/openapi.json", id)
			continue
		}
		if got.method != want[0] || got.path != want[1] {
			t.Errorf("%s is %s %s, want %s %s", id, got.method, got.path, want[0], want[1])
		}
		if sec, _ := got.op["security"].([]any); len(sec) == 0 && !publicOps[id] {
			t.Errorf("%s declares no security requirement", id)
		} else if len(sec) > 0 && publicOps[id] {
			t.Errorf("%s takes no API key but declares %v", id, sec)
		}
	}
}

// TestResponseFieldsCoverReference walks the reference's response schema of listAgents,
// getAgent and createRevision, resolving $ref, and requires every property it marks
// required, at every object level, in two places: docket's published schema for the
// same operation, and a real response from the running server.
func TestResponseFieldsCoverReference(t *testing.T) {
	ref := loadReference(t)
	w := newWorld(t, testkit.Options{})
	s := w.s
	doc := fetchOpenAPI(t, s)
	agent, _ := createAgent(t, s, w.team, w.owner, "Shape", true)
	s.Do(t, "PATCH", "/v2/agents/"+agent, w.owner, map[string]any{"pinned": true, "thread_id": "th"})

	cases := []responseCase{
		{"listAgents", "200", func(t *testing.T) *testkit.Response {
			return s.Do(t, "GET", "/v2/teams/"+w.team+"/agents", w.owner, nil)
		}, 0},
		{"getAgent", "200", func(t *testing.T) *testkit.Response {
			return s.Do(t, "GET", "/v2/agents/"+agent, w.owner, nil)
		}, 0},
		{"createRevision", "201", func(t *testing.T) *testkit.Response {
			return s.Do(t, "POST", "/v2/agents/"+agent+"/revisions", w.owner, map[string]any{"name": "shape", "config": setupConfig("Shape.")})
		}, 0},
	}
	coverReference(t, ref, doc, cases)
}

func schemaTypes(s map[string]any) []string {
	switch v := s["type"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
		return out
	}
	return nil
}

func requiredOf(s map[string]any) []string {
	var out []string
	for _, r := range asList(s["required"]) {
		out = append(out, fmt.Sprint(r))
	}
	return out
}

func asList(v any) []any { l, _ := v.([]any); return l }

// branches lists the alternatives of an anyOf/oneOf schema, or the schema itself.
func branches(d *oasDoc, t *testing.T, s map[string]any) []map[string]any {
	for _, k := range []string{"anyOf", "oneOf"} {
		if l := asList(s[k]); len(l) > 0 {
			var out []map[string]any
			for _, b := range l {
				if r := d.resolve(t, b); r != nil {
					out = append(out, r)
				}
			}
			return out
		}
	}
	return []map[string]any{s}
}

// ourBranches is branches for docket's schema, also dropping a {"type":"null"} branch.
func ourBranches(d *oasDoc, t *testing.T, s map[string]any) []map[string]any {
	var out []map[string]any
	for _, b := range branches(d, t, s) {
		if ty := schemaTypes(b); len(ty) == 1 && ty[0] == "null" {
			continue
		}
		out = append(out, b)
	}
	return out
}

// compareSchemas records, under at, every property ref requires that ours lacks, and
// descends into the properties both define. A reference anyOf is met when one of its
// alternatives is.
func compareSchemas(t *testing.T, ref, doc *oasDoc, rs, ours map[string]any, at string, gaps *[]string) {
	t.Helper()
	if hasAlternatives(rs) {
		var missed [][]string
		for _, b := range branches(ref, t, rs) {
			var g []string
			compareSchemas(t, ref, doc, b, ours, at, &g)
			if len(g) == 0 {
				return
			}
			missed = append(missed, g)
		}
		*gaps = append(*gaps, noAlternative(at, missed))
		return
	}
	if ob := ourBranches(doc, t, ours); len(ob) > 0 {
		ours = ob[0]
	}
	if items := ref.resolve(t, rs["items"]); items != nil {
		// A list docket declares always empty (maxItems 0, e.g. integration_configs)
		// sends no items, so it has no item fields to compare.
		if n, ok := ours["maxItems"].(float64); ok && n == 0 {
			return
		}
		oi := doc.resolve(t, ours["items"])
		if oi == nil {
			*gaps = append(*gaps, at+": the reference has an array, docket does not")
			return
		}
		compareSchemas(t, ref, doc, items, oi, at+"[]", gaps)
		return
	}
	rprops, _ := rs["properties"].(map[string]any)
	if len(rprops) == 0 {
		return
	}
	oprops, _ := ours["properties"].(map[string]any)
	for _, name := range requiredOf(rs) {
		if _, ok := oprops[name]; !ok {
			*gaps = append(*gaps, fmt.Sprintf("%s.%s: required by the reference, not in docket's schema", at, name))
		}
	}
	names := make([]string, 0, len(rprops))
	for n := range rprops {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		op, ok := oprops[n]
		if !ok {
			continue
		}
		compareSchemas(t, ref, doc, ref.resolve(t, rprops[n]), doc.resolve(t, op), at+"."+n, gaps)
	}
}

// noAlternative reports an anyOf none of whose alternatives was met, with what each lacked.
func noAlternative(at string, missed [][]string) string {
	parts := make([]string, len(missed))
	for i, g := range missed {
		parts[i] = fmt.Sprintf("alternative %d lacks [%s]", i+1, strings.Join(g, "; "))
	}
	return fmt.Sprintf("%s: meets none of the reference's anyOf alternatives: %s", at, strings.Join(parts, " | "))
}

func hasAlternatives(s map[string]any) bool {
	return len(asList(s["anyOf"])) > 0 || len(asList(s["oneOf"])) > 0
}

// checkInstance returns every property the reference schema requires that the JSON
// value v lacks, at every object level it can reach (through arrays, and through the
// anyOf alternative v matches best). levels counts the objects compared.
func checkInstance(t *testing.T, ref *oasDoc, s map[string]any, v any, at string, levels *int) []string {
	t.Helper()
	if v == nil {
		return nil // null where docket has no such concept: nothing below to compare
	}
	if hasAlternatives(s) {
		var missed [][]string
		for _, b := range branches(ref, t, s) {
			n := 0
			g := checkInstance(t, ref, b, v, at, &n)
			if len(g) == 0 {
				*levels += n
				return nil
			}
			missed = append(missed, g)
		}
		return []string{noAlternative(at, missed)}
	}
	switch val := v.(type) {
	case []any:
		items := ref.resolve(t, s["items"])
		if items == nil {
			return nil
		}
		var gaps []string
		for i, it := range val {
			gaps = append(gaps, checkInstance(t, ref, items, it, fmt.Sprintf("%s[%d]", at, i), levels)...)
		}
		return gaps
	case map[string]any:
		if !slices.Contains(schemaTypes(s), "object") && s["properties"] == nil {
			return nil
		}
		*levels++
		var gaps []string
		for _, name := range requiredOf(s) {
			if _, ok := val[name]; !ok {
				gaps = append(gaps, fmt.Sprintf("%s.%s: required by the reference, missing (present: %s)", at, name, strings.Join(keysOf(val), ", ")))
			}
		}
		props, _ := s["properties"].(map[string]any)
		names := make([]string, 0, len(props))
		for n := range props {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if sub, ok := val[n]; ok {
				gaps = append(gaps, checkInstance(t, ref, ref.resolve(t, props[n]), sub, at+"."+n, levels)...)
			}
		}
		return gaps
	}
	return nil
}

// responseCase is an operation whose real response must carry the reference's fields.
type responseCase struct {
	op, status string
	call       func(t *testing.T) *testkit.Response
	// depth is how many object levels the response has at least (default 3).
	depth int
}

// coverReference checks each case's published schema and real response against the
// reference's required fields.
func coverReference(t *testing.T, ref, doc *oasDoc, cases []responseCase) {
	t.Helper()
	ours, theirs := doc.operations(), ref.operations()
	for _, c := range cases {
		t.Run(c.op, func(t *testing.T) {
			refSchema := ref.responseSchema(t, theirs[c.op], c.status)
			if _, ok := ours[c.op]; !ok {
				t.Fatalf("%s missing from docket's OpenAPI document", c.op)
			}
			ourSchema := doc.responseSchema(t, ours[c.op], c.status)

			var schemaGaps []string
			compareSchemas(t, ref, doc, refSchema, ourSchema, "$", &schemaGaps)
			for _, g := range schemaGaps {
				t.Errorf("docket's %s schema: %s", c.op, g)
			}

			r := c.call(t)
			if r.Status != 200 && r.Status != 201 {
				t.Fatalf("%s: %d %s", c.op, r.Status, r.Body)
			}
			var body any
			if err := json.Unmarshal(r.Body, &body); err != nil {
				t.Fatal(err)
			}
			var levels int
			for _, g := range checkInstance(t, ref, refSchema, body, "$", &levels) {
				t.Errorf("%s response: %s", c.op, g)
			}
			if c.depth == 0 {
				c.depth = 3
			}
			if levels < c.depth {
				t.Fatalf("%s: only %d object levels compared; the walk did not reach nested objects", c.op, levels)
			}
		})
	}
}

// TestJobsResponseFieldsCoverReference does the same for the Jobs operations, on a run
// that waited at a gate and completed.
func TestJobsResponseFieldsCoverReference(t *testing.T) {
	ref := loadReference(t)
	j := newJobs(t, nil)
	doc := fetchOpenAPI(t, j.s)
	j.fake.On(testkit.LastUserContains("approve")).CallTool("request_human_approval", map[string]any{"title": "t", "description": "d"})
	agent := j.assignment(t, "x", nil)
	run := j.start(t, j.member, agent, "approve this")
	var gate string
	coverReference(t, ref, doc, []responseCase{
		{"startRun", "201", func(t *testing.T) *testkit.Response {
			return j.s.Do(t, "POST", "/v2/teams/"+j.team+"/runs", j.member, map[string]any{"agent_id": agent})
		}, 2},
		{"getRun", "200", func(t *testing.T) *testkit.Response {
			gate = j.waitRun(t, run, "waiting")["pending_human_request"].(map[string]any)["id"].(string)
			return j.s.Do(t, "GET", "/v2/runs/"+run, j.viewer, nil)
		}, 0},
		{"respondToHumanRequest", "200", func(t *testing.T) *testkit.Response {
			return j.respond(t, j.member, run, gate, map[string]any{"approved": true})
		}, 2},
		{"listRuns", "200", func(t *testing.T) *testkit.Response {
			j.waitRun(t, run, "completed")
			return j.s.Do(t, "GET", "/v2/teams/"+j.team+"/runs", j.viewer, nil)
		}, 0},
		{"listRunMessages", "200", func(t *testing.T) *testkit.Response {
			return j.s.Do(t, "GET", "/v2/runs/"+run+"/messages", j.viewer, nil)
		}, 0},
	})
}
