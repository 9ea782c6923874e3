package web_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"docket/files"
	"docket/internal/testkit"
	"docket/store"
)

// filesOps are the file and sandbox operations the reference defines.
var filesOps = map[string][2]string{
	"listFiles":              {"GET", "/v2/teams/{teamId}/files"},
	"renameFile":             {"PATCH", "/v2/teams/{teamId}/files"},
	"createFileUploadUrl":    {"POST", "/v2/teams/{teamId}/files/create-upload-url"},
	"deleteFile":             {"DELETE", "/v2/teams/{teamId}/files/{*}"},
	"getFileDownloadUrl":     {"GET", "/v2/teams/{teamId}/files/download-url/{*}"},
	"getFileContent":         {"GET", "/v2/teams/{teamId}/files/content/{*}"},
	"updateFileContent":      {"PUT", "/v2/teams/{teamId}/files/content/{*}"},
	"createSandbox":          {"POST", "/v2/sandboxes"},
	"createSandboxUploadUrl": {"POST", "/v2/sandboxes/{sandbox_id}/upload-urls"},
	"listSandboxFiles":       {"GET", "/v2/sandboxes/{sandbox_id}/files"},
	"uploadSandboxFile":      {"POST", "/v2/sandboxes/{sandbox_id}/files"},
}

// raw sends a request with no API key (signed URLs carry their own credential) and reads
// the whole response.
func raw(t *testing.T, s *testkit.Server, method, u string, body io.Reader, headers ...string) *testkit.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &testkit.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// uploadURL asks createFileUploadUrl for a signed URL for name.
func uploadURL(t *testing.T, s *testkit.Server, team, key, name, ctype string) string {
	t.Helper()
	r := s.Do(t, "POST", "/v2/teams/"+team+"/files/create-upload-url", key, map[string]any{"fileName": name, "contentType": ctype})
	if r.Status != 200 {
		t.Fatalf("createFileUploadUrl %s: %d %s", name, r.Status, r.Body)
	}
	return r.JSON(t)["signedUrl"].(string)
}

// upload puts content at name through a signed URL, as a client with no API key would.
func upload(t *testing.T, s *testkit.Server, team, key, name, content string) {
	t.Helper()
	r := raw(t, s, "PUT", uploadURL(t, s, team, key, name, "application/octet-stream"), strings.NewReader(content))
	if r.Status != 200 {
		t.Fatalf("PUT %s to its signed URL: %d %s", name, r.Status, r.Body)
	}
}

// blobFiles lists the blob files on disk (not temp files).
func blobFiles(t *testing.T, s *testkit.Server) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(s.Dir, "blobs", "sha256"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, d.Name())
		}
		return err
	})
	return out
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestFilesAPI walks every file operation's success and error answers against a real
// server, with the bytes on disk and the audit log checked.
func TestFilesAPI(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	base := "/v2/teams/" + w.team + "/files"
	memberID := keyID(t, s, w.member)
	csv := "id,name\n1,Ada\n2,Grace\n"

	// A file of the other team: never visible from ours.
	upload(t, s, w.otherTeam, w.otherKey, "theirs/secret.txt", "not yours")

	// Upload through a signed URL: no API key on the PUT.
	r := s.Do(t, "POST", base+"/create-upload-url", w.member, map[string]any{"fileName": "invoices/2026/a.csv", "contentType": "text/csv"})
	if r.Status != 200 {
		t.Fatalf("createFileUploadUrl: %d %s", r.Status, r.Body)
	}
	up := r.JSON(t)
	wantKeys(t, "createFileUploadUrl", up, "signedUrl", "expiresAt", "filePath")
	if up["filePath"] != "invoices/2026/a.csv" {
		t.Fatalf("filePath = %v", up["filePath"])
	}
	exp, err := time.Parse(time.RFC3339, up["expiresAt"].(string))
	if err != nil || exp.Sub(time.Now()) < 14*time.Minute || exp.Sub(time.Now()) > 15*time.Minute+time.Second {
		t.Fatalf("expiresAt = %v (%v), want 15 minutes from now", up["expiresAt"], err)
	}
	r = raw(t, s, "PUT", up["signedUrl"].(string), strings.NewReader(csv))
	if r.Status != 200 {
		t.Fatalf("signed PUT: %d %s", r.Status, r.Body)
	}
	blobPath := filepath.Join(s.Dir, "blobs", "sha256", sha256Hex(csv)[:2], sha256Hex(csv)[2:4], sha256Hex(csv))
	if b, err := os.ReadFile(blobPath); err != nil || string(b) != csv {
		t.Fatalf("blob on disk at %s: %q %v", blobPath, b, err)
	}
	upload(t, s, w.team, w.member, "images/pixel.png", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

	// The signed upload is audited as the user who asked for the URL.
	p := audit(t, s, w.team, w.owner, url.Values{"operation": {"uploadFile"}})
	if len(p.Entries) != 2 || p.Entries[1].Channel != "signed_url" || p.Entries[1].Actor.UserID == nil || p.Entries[1].Target.Type != "file" {
		t.Fatalf("uploadFile audit entries: %+v", p.Entries)
	}

	runScenarios(t, s, []scenario{
		{name: "listFiles", method: "GET", path: base, key: w.viewer, wantStatus: 200, after: func(t *testing.T, r *testkit.Response) {
			var out struct {
				Files []map[string]any
				Total int
			}
			r.Decode(t, &out)
			if out.Total != 2 || len(out.Files) != 2 || out.Files[0]["path"] != "images/pixel.png" || out.Files[1]["path"] != "invoices/2026/a.csv" {
				t.Fatalf("files: %+v", out)
			}
			f := out.Files[1]
			if f["name"] != "a.csv" || f["sha256"] != sha256Hex(csv) {
				t.Fatalf("file: %v", f)
			}
			md := f["metadata"].(map[string]any)
			if md["mimetype"] != "text/csv" || md["size"] != float64(len(csv)) {
				t.Fatalf("metadata: %v", md)
			}
			if out.Files[0]["metadata"].(map[string]any)["mimetype"] != "image/png" {
				t.Fatalf("the PNG was not sniffed as one: %v", out.Files[0])
			}
		}},
		{name: "listFiles by prefix, paged", method: "GET", path: base + "?prefix=invoices/&limit=1", key: w.viewer, wantStatus: 200, after: func(t *testing.T, r *testkit.Response) {
			m := r.JSON(t)
			if m["total"] != float64(1) || len(m["files"].([]any)) != 1 || m["limit"] != float64(1) {
				t.Fatalf("prefix listing: %v", m)
			}
		}},
		{name: "listFiles page past the end", method: "GET", path: base + "?offset=5", key: w.viewer, wantStatus: 200, wantContains: []string{`"files":[]`}},
		badRequest("listFiles with an escaping prefix", "GET", base+"?prefix=../", w.viewer, nil, "prefix"),
		badRequest("listFiles limit 0", "GET", base+"?limit=0", w.viewer, nil, "limit"),
		notFound("listFiles of another team", "GET", "/v2/teams/"+w.otherTeam+"/files", w.member, nil),

		{name: "getFileContent", method: "GET", path: base + "/content/invoices/2026/a.csv", key: w.viewer, wantStatus: 200, after: func(t *testing.T, r *testkit.Response) {
			m := r.JSON(t)
			if m["content"] != csv || m["path"] != "invoices/2026/a.csv" || m["contentType"] != "text/csv" {
				t.Fatalf("content: %v", m)
			}
		}},
		badRequest("getFileContent of a binary file", "GET", base+"/content/images/pixel.png", w.viewer, nil, "getFileDownloadUrl"),
		notFound("getFileContent of a missing file", "GET", base+"/content/nope.txt", w.viewer, nil),
		notFound("getFileContent of another team's file", "GET", "/v2/teams/"+w.otherTeam+"/files/content/theirs/secret.txt", w.member, nil),
		notFound("getFileContent of another team's path in ours", "GET", base+"/content/theirs/secret.txt", w.member, nil),

		{name: "updateFileContent", method: "PUT", path: base + "/content/invoices/2026/a.csv", key: w.member, body: map[string]any{"content": "id\n3\n"},
			wantStatus: 200, wantContains: []string{`"success":true`}, after: func(t *testing.T, r *testkit.Response) {
				got := s.Do(t, "GET", base+"/content/invoices/2026/a.csv", w.viewer, nil).JSON(t)
				if got["content"] != "id\n3\n" {
					t.Fatalf("after update: %v", got)
				}
				wantAudited(t, s, w.team, "updateFileContent", "", memberID, "success")
			}},
		notFound("updateFileContent of a missing file", "PUT", base+"/content/nope.txt", w.member, map[string]any{"content": "x"}),
		forbidden("updateFileContent as viewer", "PUT", base+"/content/invoices/2026/a.csv", w.viewer, map[string]any{"content": "x"}, "updateFileContent"),
		badRequest("updateFileContent without content", "PUT", base+"/content/invoices/2026/a.csv", w.member, map[string]any{}, "content"),

		{name: "getFileDownloadUrl", method: "GET", path: base + "/download-url/images/pixel.png", key: w.viewer, wantStatus: 200, after: func(t *testing.T, r *testkit.Response) {
			m := r.JSON(t)
			wantKeys(t, "getFileDownloadUrl", m, "url", "expiresAt")
			got := raw(t, s, "GET", m["url"].(string), nil)
			if got.Status != 200 || !strings.HasPrefix(string(got.Body), "\x89PNG") || got.Header.Get("Content-Type") != "image/png" {
				t.Fatalf("signed GET: %d %q %v", got.Status, got.Body, got.Header)
			}
			if !strings.Contains(got.Header.Get("Content-Disposition"), `filename=pixel.png`) || got.Header.Get("ETag") == "" {
				t.Fatalf("download headers: %v", got.Header)
			}
			ranged := raw(t, s, "GET", m["url"].(string), nil, "Range", "bytes=1-3")
			if ranged.Status != 206 || string(ranged.Body) != "PNG" {
				t.Fatalf("range download: %d %q", ranged.Status, ranged.Body)
			}
		}},
		notFound("getFileDownloadUrl of a missing file", "GET", base+"/download-url/nope.bin", w.viewer, nil),
		notFound("getFileDownloadUrl of another team's file", "GET", "/v2/teams/"+w.otherTeam+"/files/download-url/theirs/secret.txt", w.member, nil),

		{name: "renameFile keeps the folder and extension", method: "PATCH", path: base, key: w.member,
			body: map[string]any{"relativePath": "invoices/2026/a.csv", "newFilenameOnly": "march"}, wantStatus: 200, after: func(t *testing.T, r *testkit.Response) {
				if m := r.JSON(t); m["success"] != true || m["path"] != "invoices/2026/march.csv" {
					t.Fatalf("rename: %v", m)
				}
				if r := s.Do(t, "GET", base+"/content/invoices/2026/march.csv", w.viewer, nil); r.Status != 200 {
					t.Fatalf("renamed file: %d", r.Status)
				}
				if r := s.Do(t, "GET", base+"/content/invoices/2026/a.csv", w.viewer, nil); r.Status != 404 {
					t.Fatalf("old path still answers: %d", r.Status)
				}
				wantAudited(t, s, w.team, "renameFile", "", memberID, "success")
			}},
		{name: "renameFile to its own name", method: "PATCH", path: base, key: w.member,
			body:       map[string]any{"relativePath": "images/pixel.png", "newFilenameOnly": "pixel"},
			wantStatus: 200},
		badRequest("renameFile into another folder", "PATCH", base, w.member, map[string]any{"relativePath": "images/pixel.png", "newFilenameOnly": "../pixel"}, "newFilenameOnly"),
		badRequest("renameFile to a dot name", "PATCH", base, w.member, map[string]any{"relativePath": "x", "newFilenameOnly": ".."}, "newFilenameOnly"),
		badRequest("renameFile with an absolute path", "PATCH", base, w.member, map[string]any{"relativePath": "/etc/passwd", "newFilenameOnly": "x"}, "relativePath"),
		notFound("renameFile of a missing file", "PATCH", base, w.member, map[string]any{"relativePath": "nope.txt", "newFilenameOnly": "x"}),
		notFound("renameFile of another team's file", "PATCH", base, w.member, map[string]any{"relativePath": "theirs/secret.txt", "newFilenameOnly": "mine"}),
		forbidden("renameFile as viewer", "PATCH", base, w.viewer, map[string]any{"relativePath": "images/pixel.png", "newFilenameOnly": "x"}, "renameFile"),

		forbidden("createFileUploadUrl as viewer", "POST", base+"/create-upload-url", w.viewer, map[string]any{"fileName": "a.txt", "contentType": "text/plain"}, "createFileUploadUrl"),
		badRequest("createFileUploadUrl with ../", "POST", base+"/create-upload-url", w.member, map[string]any{"fileName": "../escape.txt", "contentType": "text/plain"}, `fileName "../escape.txt"`),
		badRequest("createFileUploadUrl absolute", "POST", base+"/create-upload-url", w.member, map[string]any{"fileName": "/etc/passwd", "contentType": "text/plain"}, `fileName "/etc/passwd"`),
		badRequest("createFileUploadUrl with NUL", "POST", base+"/create-upload-url", w.member, map[string]any{"fileName": "a\x00.txt", "contentType": "text/plain"}, "NUL"),
		badRequest("createFileUploadUrl with an empty segment", "POST", base+"/create-upload-url", w.member, map[string]any{"fileName": "a//b.txt", "contentType": "text/plain"}, "empty segment"),
		badRequest("createFileUploadUrl with a bad content type", "POST", base+"/create-upload-url", w.member, map[string]any{"fileName": "a.txt", "contentType": "not a type"}, "contentType"),
		badRequest("createFileUploadUrl without fileName", "POST", base+"/create-upload-url", w.member, map[string]any{"contentType": "text/plain"}, "fileName"),
		notFound("createFileUploadUrl in another team", "POST", "/v2/teams/"+w.otherTeam+"/files/create-upload-url", w.member, map[string]any{"fileName": "planted.txt", "contentType": "text/plain"}),

		// Traversal in the URL: encoded or literal, it is refused, never resolved.
		badRequest("getFileContent ..%2F", "GET", base+"/content/..%2F..%2Fetc%2Fpasswd", w.viewer, nil, "path"),
		badRequest("getFileContent literal ../", "GET", base+"/content/a/../../etc/passwd", w.viewer, nil, `".."`),
		badRequest("getFileContent %2e%2e", "GET", base+"/content/%2e%2e/x", w.viewer, nil, "path"),
		badRequest("getFileContent absolute", "GET", base+"/content/%2Fetc%2Fpasswd", w.viewer, nil, "path"),
		badRequest("getFileContent NUL", "GET", base+"/content/a%00b", w.viewer, nil, "NUL"),
		badRequest("getFileContent doubled slash", "GET", base+"/content/a//b", w.viewer, nil, "empty segment"),
		badRequest("deleteFile ..", "DELETE", base+"/..%2Fx", w.member, nil, "path"),
		badRequest("getFileDownloadUrl ..", "GET", base+"/download-url/x/..", w.viewer, nil, "path"),
		badRequest("getFileContent empty path", "GET", base+"/content/", w.viewer, nil, "path"),

		forbidden("deleteFile as viewer", "DELETE", base+"/images/pixel.png", w.viewer, nil, "deleteFile"),
		notFound("deleteFile of another team's file", "DELETE", base+"/theirs/secret.txt", w.member, nil),
		{name: "deleteFile", method: "DELETE", path: base + "/images/pixel.png", key: w.member, wantStatus: 200, wantContains: []string{`"success":true`},
			after: func(t *testing.T, r *testkit.Response) {
				if r := s.Do(t, "GET", base+"/download-url/images/pixel.png", w.viewer, nil); r.Status != 404 {
					t.Fatalf("deleted file still has a download URL: %d", r.Status)
				}
				wantAudited(t, s, w.team, "deleteFile", "", memberID, "success")
			}},
		notFound("deleteFile again", "DELETE", base+"/images/pixel.png", w.member, nil),
	})
	for _, sc := range unauthenticated("GET", base, nil) {
		t.Run("listFiles "+sc.name, func(t *testing.T) { sc.run(t, s) })
	}

	// The other team's file is untouched by all of the above.
	got := s.Do(t, "GET", "/v2/teams/"+w.otherTeam+"/files/content/theirs/secret.txt", w.otherKey, nil)
	if got.Status != 200 || got.JSON(t)["content"] != "not yours" {
		t.Fatalf("other team's file: %d %s", got.Status, got.Body)
	}
}

// TestRenameOntoExistingFileConflicts: a rename never overwrites.
func TestRenameOntoExistingFileConflicts(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	upload(t, w.s, w.team, w.member, "a.txt", "a")
	upload(t, w.s, w.team, w.member, "b.txt", "b")
	r := w.s.Do(t, "PATCH", "/v2/teams/"+w.team+"/files", w.member, map[string]any{"relativePath": "a.txt", "newFilenameOnly": "b"})
	if r.Status != 409 || !strings.Contains(errorBody(t, r).Message, `"b.txt"`) {
		t.Fatalf("rename onto b.txt: %d %s", r.Status, r.Body)
	}
	if got := w.s.Do(t, "GET", "/v2/teams/"+w.team+"/files/content/b.txt", w.viewer, nil).JSON(t); got["content"] != "b" {
		t.Fatalf("b.txt changed: %v", got)
	}
}

// TestSignedURLs: a signed URL works without an API key for its method, path and team
// until it expires; any change to it, another method, or expiry answers 403.
func TestSignedURLs(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	upload(t, s, w.team, w.member, "doc.txt", "hello")
	upload(t, s, w.team, w.member, "other.txt", "other")
	r := s.Do(t, "GET", "/v2/teams/"+w.team+"/files/download-url/doc.txt", w.viewer, nil)
	down, err := url.Parse(r.JSON(t)["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	up, _ := url.Parse(uploadURL(t, s, w.team, w.member, "doc.txt", "text/plain"))

	tamper := func(u *url.URL, fn func(q url.Values, u *url.URL)) string {
		c := *u
		q := c.Query()
		fn(q, &c)
		c.RawQuery = q.Encode()
		return c.String()
	}
	master, err := store.DataDir{Path: s.Dir}.MasterKey()
	if err != nil {
		t.Fatal(err)
	}
	// A genuine signature whose expiry has passed.
	past := files.NewSigner(master).WithClock(func() time.Time { return time.Now().Add(-time.Hour) })
	q, _ := past.Sign("GET", "/v2/signed/files/doc.txt", w.team, files.DefaultURLTTL, url.Values{"uid": {"x"}})
	expired := s.URL + "/v2/signed/files/doc.txt?" + q.Encode()

	cases := []struct {
		name, method, url string
		body              string
		status            int
		contains          string
	}{
		{"download works without a key", "GET", down.String(), "", 200, "hello"},
		{"HEAD works where GET does", "HEAD", down.String(), "", 200, ""},
		{"tampered signature", "GET", tamper(down, func(q url.Values, _ *url.URL) { q.Set("signature", strings.Repeat("0", 64)) }), "", 403, "signature"},
		{"signature removed", "GET", tamper(down, func(q url.Values, _ *url.URL) { q.Del("signature") }), "", 403, "signature"},
		{"another path", "GET", tamper(down, func(_ url.Values, u *url.URL) { u.Path = "/v2/signed/files/other.txt" }), "", 403, "signature"},
		{"another team", "GET", tamper(down, func(q url.Values, _ *url.URL) { q.Set("team", w.otherTeam) }), "", 403, "signature"},
		{"a later expiry", "GET", tamper(down, func(q url.Values, _ *url.URL) { q.Set("expires", "99999999999") }), "", 403, "signature"},
		{"expired", "GET", expired, "", 403, "expired"},
		{"download URL used to upload", "PUT", down.String(), "overwritten", 403, "PUT"},
		{"download URL used to delete", "DELETE", down.String(), "", 403, "DELETE"},
		{"upload URL used to download", "GET", up.String(), "", 403, "GET"},
		{"upload URL with POST", "POST", up.String(), "x", 403, "POST"},
		{"upload URL onto another path", "PUT", tamper(up, func(_ url.Values, u *url.URL) { u.Path = "/v2/signed/files/planted.txt" }), "x", 403, "signature"},
		{"upload URL with another content type", "PUT", tamper(up, func(q url.Values, _ *url.URL) { q.Set("content_type", "text/html") }), "x", 403, "signature"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			r := raw(t, s, c.method, c.url, body)
			if r.Status != c.status {
				t.Fatalf("%s: %d, want %d: %s", c.name, r.Status, c.status, r.Body)
			}
			if c.status >= 400 {
				if e := errorBody(t, r); e.Code != "forbidden" || !strings.Contains(e.Message, c.contains) {
					t.Fatalf("%s: %+v, want forbidden mentioning %q", c.name, e, c.contains)
				}
			} else if !strings.Contains(string(r.Body), c.contains) {
				t.Fatalf("%s: body %q", c.name, r.Body)
			}
		})
	}
	if got := s.Do(t, "GET", "/v2/teams/"+w.team+"/files/content/doc.txt", w.viewer, nil).JSON(t); got["content"] != "hello" {
		t.Fatalf("a refused request changed the file: %v", got)
	}
	if r := s.Do(t, "GET", "/v2/teams/"+w.team+"/files/content/planted.txt", w.viewer, nil); r.Status != 404 {
		t.Fatalf("a tampered upload URL planted a file: %d", r.Status)
	}
	// The upload URL itself still works, for PUT.
	if r := raw(t, s, "PUT", up.String(), strings.NewReader("replaced")); r.Status != 200 {
		t.Fatalf("genuine upload: %d %s", r.Status, r.Body)
	}
}

// TestUploadOverLimit: every way in refuses a file over --max-file-size with 413 naming
// the limit, and stores nothing.
func TestUploadOverLimit(t *testing.T) {
	const limit = 1 << 20
	w := newWorld(t, testkit.Options{MaxFileSize: limit})
	s := w.s
	over := strings.Repeat("x", limit+1)
	check := func(t *testing.T, r *testkit.Response) {
		t.Helper()
		if r.Status != 413 {
			t.Fatalf("status %d, want 413: %.200s", r.Status, r.Body)
		}
		if e := errorBody(t, r); e.Code != "payload_too_large" || !strings.Contains(e.Message, "1048576 bytes (1 MiB)") {
			t.Fatalf("413 does not name the limit: %+v", e)
		}
	}
	t.Run("signed PUT with a length", func(t *testing.T) {
		check(t, raw(t, s, "PUT", uploadURL(t, s, w.team, w.member, "big.bin", "application/octet-stream"), strings.NewReader(over)))
	})
	t.Run("signed PUT streamed without a length", func(t *testing.T) {
		// io.MultiReader hides the length, so the body is sent chunked and the limit is
		// found while streaming.
		check(t, raw(t, s, "PUT", uploadURL(t, s, w.team, w.member, "big.bin", "application/octet-stream"), io.MultiReader(strings.NewReader(over))))
	})
	t.Run("exactly the limit is accepted", func(t *testing.T) {
		if r := raw(t, s, "PUT", uploadURL(t, s, w.team, w.member, "edge.bin", "application/octet-stream"), strings.NewReader(over[1:])); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
	t.Run("updateFileContent", func(t *testing.T) {
		upload(t, s, w.team, w.member, "small.txt", "small")
		check(t, s.Do(t, "PUT", "/v2/teams/"+w.team+"/files/content/small.txt", w.member, map[string]any{"content": over}))
	})
	t.Run("uploadSandboxFile", func(t *testing.T) {
		sb := createSandbox(t, s, w.member)
		check(t, sandboxUpload(t, s, w.member, sb, "/workspace/big.bin", "big.bin", over))
	})
	if got := s.Do(t, "GET", "/v2/teams/"+w.team+"/files?prefix=big", w.viewer, nil).JSON(t); got["total"] != float64(0) {
		t.Fatalf("a refused upload left a file: %v", got)
	}
	for _, b := range blobFiles(t, s) {
		if b == sha256Hex(over) {
			t.Fatal("a refused upload left its blob")
		}
	}
	if tmps, _ := os.ReadDir(filepath.Join(s.Dir, "blobs", "tmp")); len(tmps) != 0 {
		t.Fatalf("refused uploads left %d temp files", len(tmps))
	}
}

// patternReader yields n bytes of a cheap, position-dependent pattern.
type patternReader struct{ off, n int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	k := min(int64(len(b)), p.n-p.off)
	for i := range k {
		x := p.off + i
		b[i] = byte(x ^ x>>8 ^ x>>16)
	}
	p.off += k
	return int(k), nil
}

// heapWatch samples the process's in-use heap while running: the peak over the baseline
// is what a request held in memory.
func heapWatch(t *testing.T, fn func()) uint64 {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	fn()
	close(done)
	wg.Wait()
	if peak.Load() < base {
		return 0
	}
	return peak.Load() - base
}

// TestLargeFileStreams uploads and downloads a 200 MiB file and asserts the process's
// heap never grew by anything near the file's size: both directions stream between the
// socket and the blob file. Buffering either would show as ≥200 MiB.
func TestLargeFileStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 400 MiB through the server")
	}
	const size = 200 << 20
	const budget = 48 << 20
	w := newWorld(t, testkit.Options{MaxFileSize: 256 << 20})
	s := w.s
	h := sha256.New()
	io.Copy(h, &patternReader{n: size})
	want := hex.EncodeToString(h.Sum(nil))

	put := uploadURL(t, s, w.team, w.member, "big/video.bin", "application/octet-stream")
	grew := heapWatch(t, func() {
		r := raw(t, s, "PUT", put, &patternReader{n: size})
		if r.Status != 200 {
			t.Fatalf("upload: %d %s", r.Status, r.Body)
		}
	})
	t.Logf("heap growth during a %d MiB upload: %.1f MiB", size>>20, float64(grew)/(1<<20))
	if grew > budget {
		t.Fatalf("heap grew by %d MiB during a %d MiB upload: the upload is buffered", grew>>20, size>>20)
	}

	get := s.Do(t, "GET", "/v2/teams/"+w.team+"/files/download-url/big/video.bin", w.viewer, nil).JSON(t)["url"].(string)
	var got string
	var n int64
	grew = heapWatch(t, func() {
		resp, err := s.Client.Get(get)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || resp.ContentLength != size {
			t.Fatalf("download: %d, length %d", resp.StatusCode, resp.ContentLength)
		}
		h := sha256.New()
		n, _ = io.Copy(h, resp.Body)
		got = hex.EncodeToString(h.Sum(nil))
	})
	t.Logf("heap growth during a %d MiB download: %.1f MiB", size>>20, float64(grew)/(1<<20))
	if n != size || got != want {
		t.Fatalf("downloaded %d bytes with sha256 %s, want %d and %s", n, got, size, want)
	}
	if grew > budget {
		t.Fatalf("heap grew by %d MiB during a %d MiB download: the download is buffered", grew>>20, size>>20)
	}
}

func createSandbox(t *testing.T, s *testkit.Server, key string) string {
	t.Helper()
	r := s.Do(t, "POST", "/v2/sandboxes", key, nil)
	if r.Status != 201 {
		t.Fatalf("createSandbox: %d %s", r.Status, r.Body)
	}
	return r.JSON(t)["sandbox_id"].(string)
}

// sandboxUpload posts one file as multipart/form-data, as a browser or requests would.
func sandboxUpload(t *testing.T, s *testkit.Server, key, sandbox, path, name, content string) *testkit.Response {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if path != "" {
		mw.WriteField("path", path)
	}
	fw, _ := mw.CreateFormFile("file", name)
	io.WriteString(fw, content)
	mw.Close()
	return raw(t, s, "POST", s.URL+"/v2/sandboxes/"+sandbox+"/files", &buf, "Authorization", "Bearer "+key, "Content-Type", mw.FormDataContentType())
}

func TestSandboxes(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	r := s.Do(t, "POST", "/v2/sandboxes", w.member, nil)
	if r.Status != 201 {
		t.Fatalf("createSandbox: %d %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	wantKeys(t, "createSandbox", m, "sandbox_id", "expires_at")
	sb := m["sandbox_id"].(string)
	theirs := createSandbox(t, s, w.otherKey)

	// Multipart with an explicit path, multipart named by its file, a raw body, a signed URL.
	if r := sandboxUpload(t, s, w.member, sb, "/workspace/data.csv", "local.csv", "a,b\n1,2\n"); r.Status != 201 || r.JSON(t)["path"] != "/workspace/data.csv" || r.JSON(t)["size_bytes"] != float64(8) {
		t.Fatalf("uploadSandboxFile: %d %s", r.Status, r.Body)
	}
	if r := sandboxUpload(t, s, w.member, sb, "", "notes.txt", "n"); r.Status != 201 || r.JSON(t)["path"] != "/workspace/notes.txt" {
		t.Fatalf("uploadSandboxFile by file name: %d %s", r.Status, r.Body)
	}
	if r := raw(t, s, "POST", s.URL+"/v2/sandboxes/"+sb+"/files?path=/workspace/in/raw.txt", strings.NewReader("raw"), "Authorization", "Bearer "+w.member); r.Status != 201 {
		t.Fatalf("raw uploadSandboxFile: %d %s", r.Status, r.Body)
	}
	r = s.Do(t, "POST", "/v2/sandboxes/"+sb+"/upload-urls", w.member, map[string]any{"path": "/workspace/in/big.bin"})
	if r.Status != 200 {
		t.Fatalf("createSandboxUploadUrl: %d %s", r.Status, r.Body)
	}
	u := r.JSON(t)
	wantKeys(t, "createSandboxUploadUrl", u, "upload_url", "path", "expires_in_seconds")
	if u["expires_in_seconds"] != float64(900) {
		t.Fatalf("expires_in_seconds = %v", u["expires_in_seconds"])
	}
	if r := raw(t, s, "PUT", u["upload_url"].(string), strings.NewReader("0123456789")); r.Status != 201 || r.JSON(t)["size_bytes"] != float64(10) {
		t.Fatalf("signed sandbox PUT: %d %s", r.Status, r.Body)
	}
	if r := raw(t, s, "GET", u["upload_url"].(string), nil); r.Status != 403 {
		t.Fatalf("sandbox upload URL with GET: %d", r.Status)
	}

	list := func(t *testing.T, query string) []map[string]any {
		r := s.Do(t, "GET", "/v2/sandboxes/"+sb+"/files"+query, w.viewer, nil)
		if r.Status != 200 {
			t.Fatalf("listSandboxFiles%s: %d %s", query, r.Status, r.Body)
		}
		var out struct{ Files []map[string]any }
		r.Decode(t, &out)
		return out.Files
	}
	got := list(t, "")
	if len(got) != 3 || got[0]["path"] != "/workspace/data.csv" || got[0]["type"] != "file" || got[0]["size_bytes"] != float64(8) ||
		got[1]["path"] != "/workspace/in" || got[1]["type"] != "dir" || got[2]["name"] != "notes.txt" {
		t.Fatalf("listSandboxFiles: %v", got)
	}
	if got := list(t, "?path=/workspace/in"); len(got) != 2 || got[0]["name"] != "big.bin" || got[1]["name"] != "raw.txt" {
		t.Fatalf("listSandboxFiles in/: %v", got)
	}
	if got := list(t, "?path=/"); len(got) != 1 || got[0]["path"] != "/workspace" || got[0]["type"] != "dir" {
		t.Fatalf("listSandboxFiles /: %v", got)
	}

	runScenarios(t, s, []scenario{
		notFound("listSandboxFiles of another team's sandbox", "GET", "/v2/sandboxes/"+theirs+"/files", w.member, nil),
		notFound("createSandboxUploadUrl in another team's sandbox", "POST", "/v2/sandboxes/"+theirs+"/upload-urls", w.member, map[string]any{"path": "/workspace/x"}),
		notFound("uploadSandboxFile to an unknown sandbox", "POST", "/v2/sandboxes/"+randomID()+"/files?path=x", w.member, "x"),
		notFound("uploadSandboxFile to another team's sandbox", "POST", "/v2/sandboxes/"+theirs+"/files?path=x", w.member, "x"),
		badRequest("createSandboxUploadUrl escaping", "POST", "/v2/sandboxes/"+sb+"/upload-urls", w.member, map[string]any{"path": "/workspace/../../etc/passwd"}, `path "/workspace/../../etc/passwd"`),
		badRequest("createSandboxUploadUrl NUL", "POST", "/v2/sandboxes/"+sb+"/upload-urls", w.member, map[string]any{"path": "a\x00b"}, "NUL"),
		badRequest("listSandboxFiles escaping", "GET", "/v2/sandboxes/"+sb+"/files?path=/workspace/..", w.viewer, nil, "path"),
		badRequest("uploadSandboxFile raw without a path", "POST", "/v2/sandboxes/"+sb+"/files", w.member, "x", "path"),
		badRequest("uploadSandboxFile escaping", "POST", "/v2/sandboxes/"+sb+"/files?path=/workspace/../x", w.member, "x", "path"),
		forbidden("createSandbox as viewer", "POST", "/v2/sandboxes", w.viewer, nil, "createSandbox"),
		forbidden("uploadSandboxFile as viewer", "POST", "/v2/sandboxes/"+sb+"/files?path=x", w.viewer, "x", "uploadSandboxFile"),
	})
	if r := sandboxUpload(t, s, w.member, sb, "../../etc/passwd", "x", "x"); r.Status != 400 || !strings.Contains(errorBody(t, r).Message, `path "../../etc/passwd"`) {
		t.Fatalf("multipart upload with an escaping path: %d %s", r.Status, r.Body)
	}
	if r := sandboxUpload(t, s, w.member, theirs, "/workspace/planted", "x", "x"); r.Status != 404 {
		t.Fatalf("multipart upload into another team's sandbox: %d %s", r.Status, r.Body)
	}
	if got := s.Do(t, "GET", "/v2/sandboxes/"+theirs+"/files", w.otherKey, nil); !strings.Contains(string(got.Body), `"files":[]`) {
		t.Fatalf("the other team's sandbox got files: %s", got.Body)
	}
	memberID := keyID(t, s, w.member)
	wantAudited(t, s, w.team, "createSandbox", sb, memberID, "success")
	wantAudited(t, s, w.team, "uploadSandboxFile", sb, memberID, "success")
}

// TestRunWritesAndReadsFiles: a run writes a file, reads it back, and the file shows on
// getRun as an artifact under runs/<run id>/.
func TestRunWritesAndReadsFiles(t *testing.T) {
	j := newJobs(t, nil)
	upload(t, j.s, j.team, j.member, "policy/refunds.md", "Refunds within 30 days.")
	j.fake.On(testkit.LastUserContains("report")).CallTool("write_file", map[string]any{"path": "out/report.md", "content": "# Report\nAll good.\n"})
	j.fake.On(testkit.LastToolResult("write_file")).CallTool("read_file", map[string]any{"path": "out/report.md"})
	j.fake.On(testkit.LastToolResult("read_file"), testkit.LastContains("# Report")).CallTool("read_file", map[string]any{"path": "policy/refunds.md"})
	j.fake.On(testkit.LastToolResult("read_file"), testkit.LastContains("Refunds")).CallTool("list_files", map[string]any{"prefix": "runs/"})
	j.fake.On(testkit.LastToolResult("list_files")).Reply("Report written.")
	agent := j.assignment(t, "Write reports.", nil)
	run := j.start(t, j.member, agent, "write the report")
	got := j.waitRun(t, run, "completed")

	var results []string
	for _, m := range j.messages(t, run) {
		if tr, ok := m["tool_result"].(map[string]any); ok && tr != nil {
			results = append(results, str(tr["result"])+str(tr["error"]))
		}
	}
	if len(results) != 4 || !strings.Contains(results[0], "saved runs/"+run+"/out/report.md") || results[1] != "# Report\nAll good.\n<null>" ||
		!strings.HasPrefix(results[2], "Refunds within 30 days.") || !strings.Contains(results[3], "runs/"+run+"/out/report.md") {
		t.Fatalf("tool results: %q", results)
	}
	arts := field(t, got, "run", "artifacts").([]any)
	if len(arts) != 1 {
		t.Fatalf("artifacts: %v", arts)
	}
	a := arts[0].(map[string]any)
	if a["path"] != "runs/"+run+"/out/report.md" || a["name"] != "report.md" || a["run_id"] != run ||
		a["metadata"].(map[string]any)["mimetype"] != "text/markdown; charset=utf-8" && a["metadata"].(map[string]any)["mimetype"] != "text/plain; charset=utf-8" {
		t.Fatalf("artifact: %v", a)
	}
	content := j.s.Do(t, "GET", "/v2/teams/"+j.team+"/files/content/runs/"+run+"/out/report.md", j.viewer, nil).JSON(t)
	if content["content"] != "# Report\nAll good.\n" {
		t.Fatalf("the artifact's content through the API: %v", content)
	}
	p := audit(t, j.s, j.team, j.owner, url.Values{"operation": {"write_file"}})
	if len(p.Entries) != 1 || p.Entries[0].Channel != "run" {
		t.Fatalf("write_file audit: %+v", p.Entries)
	}
}

// TestRunRefusesFileEscapes: the file tools refuse paths outside their reach, and a
// write never lands outside the run's folder.
func TestRunRefusesFileEscapes(t *testing.T) {
	j := newJobs(t, nil)
	upload(t, j.s, j.otherTeam, j.otherKey, "theirs.txt", "secret")
	j.fake.On(testkit.LastUserContains("go")).CallTool("write_file", map[string]any{"path": "../../policy.md", "content": "x"})
	j.fake.On(testkit.LastToolResult("write_file")).CallTool("read_file", map[string]any{"path": "theirs.txt"})
	j.fake.On(testkit.LastToolResult("read_file")).CallTool("read_file", map[string]any{"path": "/workspace/x"}).Once()
	j.fake.On(testkit.LastToolResult("read_file")).Reply("done")
	run := j.start(t, j.member, j.assignment(t, "x", nil), "go")
	j.waitRun(t, run, "completed")
	var errs []string
	for _, m := range j.messages(t, run) {
		if tr, ok := m["tool_result"].(map[string]any); ok && tr != nil {
			errs = append(errs, str(tr["error"]))
		}
	}
	if len(errs) != 3 || !strings.Contains(errs[0], `".."`) || !strings.Contains(errs[1], "no file theirs.txt") || !strings.Contains(errs[2], "no sandbox") {
		t.Fatalf("tool errors: %q", errs)
	}
	if got := j.s.Do(t, "GET", "/v2/teams/"+j.team+"/files", j.viewer, nil).JSON(t); got["total"] != float64(0) {
		t.Fatalf("an escaping write left a file: %v", got)
	}
}

// TestStartRunWithSandbox: a run started with sandbox_id reads the sandbox's files.
func TestStartRunWithSandbox(t *testing.T) {
	j := newJobs(t, nil)
	sb := createSandbox(t, j.s, j.member)
	if r := sandboxUpload(t, j.s, j.member, sb, "/workspace/orders.csv", "orders.csv", "order,total\nA1,42\n"); r.Status != 201 {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	j.fake.On(testkit.LastUserContains("orders")).CallTool("list_files", map[string]any{"prefix": "/workspace/"})
	j.fake.On(testkit.LastToolResult("list_files")).CallTool("read_file", map[string]any{"path": "/workspace/orders.csv"})
	j.fake.On(testkit.LastToolResult("read_file")).Reply("Total 42.")
	agent := j.assignment(t, "Sum orders.", nil)
	r := j.s.Do(t, "POST", "/v2/teams/"+j.team+"/runs", j.member, map[string]any{"agent_id": agent, "message": "sum the orders", "sandbox_id": sb})
	if r.Status != 201 || field(t, r.JSON(t), "run", "sandbox_id") != sb {
		t.Fatalf("startRun with sandbox_id: %d %s", r.Status, r.Body)
	}
	run := field(t, r.JSON(t), "run", "id").(string)
	j.waitRun(t, run, "completed")
	if got := j.lastToolResult(t); got != "order,total\nA1,42\n" {
		t.Fatalf("read_file of the sandbox file gave %q", got)
	}
	msgs := j.messages(t, run)
	if listed := str(msgs[2]["tool_result"].(map[string]any)["result"]); !strings.Contains(listed, "/workspace/orders.csv") {
		t.Fatalf("list_files of the sandbox: %s", listed)
	}

	theirs := createSandbox(t, j.s, j.otherKey)
	runScenarios(t, j.s, []scenario{
		notFound("startRun with an unknown sandbox", "POST", "/v2/teams/"+j.team+"/runs", j.member, map[string]any{"agent_id": agent, "sandbox_id": randomID()}),
		notFound("startRun with another team's sandbox", "POST", "/v2/teams/"+j.team+"/runs", j.member, map[string]any{"agent_id": agent, "sandbox_id": theirs}),
	})
}

// TestBlobGC: deleting the last file on a blob makes it garbage; GC removes it from disk
// and keeps every blob something still points at, including one two paths share.
func TestBlobGC(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	upload(t, s, w.team, w.member, "keep.txt", "keep")
	upload(t, s, w.team, w.member, "shared-1.txt", "shared")
	upload(t, s, w.team, w.member, "shared-2.txt", "shared")
	upload(t, s, w.team, w.member, "drop.txt", "drop")
	// Idempotent re-put: same content, same single blob.
	upload(t, s, w.team, w.member, "keep.txt", "keep")
	if n := len(blobFiles(t, s)); n != 3 {
		t.Fatalf("%d blob files for 3 distinct contents", n)
	}
	for _, p := range []string{"drop.txt", "shared-1.txt"} {
		if r := s.Do(t, "DELETE", "/v2/teams/"+w.team+"/files/"+p, w.member, nil); r.Status != 200 {
			t.Fatalf("delete %s: %d", p, r.Status)
		}
	}
	st, _, err := files.Collect(context.Background(), s.Blobs, s.Store, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Removed != 1 {
		t.Fatalf("GC: %+v, want exactly the dropped blob removed", st)
	}
	left := strings.Join(blobFiles(t, s), " ")
	if strings.Contains(left, sha256Hex("drop")) || !strings.Contains(left, sha256Hex("keep")) || !strings.Contains(left, sha256Hex("shared")) {
		t.Fatalf("blobs after GC: %s", left)
	}
	for _, p := range []string{"keep.txt", "shared-2.txt"} {
		url := s.Do(t, "GET", "/v2/teams/"+w.team+"/files/download-url/"+p, w.viewer, nil).JSON(t)["url"].(string)
		if r := raw(t, s, "GET", url, nil); r.Status != 200 {
			t.Fatalf("%s after GC: %d", p, r.Status)
		}
	}
	// Re-uploading collected content stores it again.
	upload(t, s, w.team, w.member, "drop.txt", "drop")
	if r := s.Do(t, "GET", "/v2/teams/"+w.team+"/files/content/drop.txt", w.viewer, nil); r.Status != 200 || r.JSON(t)["content"] != "drop" {
		t.Fatalf("re-upload after GC: %d %s", r.Status, r.Body)
	}
}

// TestFilesResponseFieldsCoverReference checks the file and sandbox operations' published
// schemas and real responses against the reference's required fields.
func TestFilesResponseFieldsCoverReference(t *testing.T) {
	ref := loadReference(t)
	w := newWorld(t, testkit.Options{})
	s := w.s
	doc := fetchOpenAPI(t, s)
	base := "/v2/teams/" + w.team + "/files"
	upload(t, s, w.team, w.member, "notes/a.txt", "a")
	upload(t, s, w.team, w.member, "notes/b.txt", "b")
	sb := createSandbox(t, s, w.member)
	sandboxUpload(t, s, w.member, sb, "/workspace/in/x.csv", "x.csv", "x")
	coverReference(t, ref, doc, []responseCase{
		{"listFiles", "200", func(t *testing.T) *testkit.Response { return s.Do(t, "GET", base, w.viewer, nil) }, 3},
		{"createFileUploadUrl", "200", func(t *testing.T) *testkit.Response {
			return s.Do(t, "POST", base+"/create-upload-url", w.member, map[string]any{"fileName": "c.txt", "contentType": "text/plain"})
		}, 1},
		{"getFileDownloadUrl", "200", func(t *testing.T) *testkit.Response {
			return s.Do(t, "GET", base+"/download-url/notes/a.txt", w.viewer, nil)
		}, 1},
		{"getFileContent", "200", func(t *testing.T) *testkit.Response {
			return s.Do(t, "GET", base+"/content/notes/a.txt", w.viewer, nil)
		}, 1},
		{"updateFileContent", "200", func(t *testing.T) *testkit.Response {
			return s.Do(t, "PUT", base+"/content/notes/a.txt", w.member, map[string]any{"content": "A"})
		}, 1},
		{"renameFile", "200", func(t *testing.T) *testkit.Response {
			return s.Do(t, "PATCH", base, w.member, map[string]any{"relativePath": "notes/a.txt", "newFilenameOnly": "aa"})
		}, 1},
		{"deleteFile", "200", func(t *testing.T) *testkit.Response { return s.Do(t, "DELETE", base+"/notes/b.txt", w.member, nil) }, 1},
		{"createSandbox", "201", func(t *testing.T) *testkit.Response { return s.Do(t, "POST", "/v2/sandboxes", w.member, nil) }, 1},
		{"createSandboxUploadUrl", "200", func(t *testing.T) *testkit.Response {
			return s.Do(t, "POST", "/v2/sandboxes/"+sb+"/upload-urls", w.member, map[string]any{"path": "/workspace/y.csv"})
		}, 1},
		{"listSandboxFiles", "200", func(t *testing.T) *testkit.Response {
			return s.Do(t, "GET", "/v2/sandboxes/"+sb+"/files", w.viewer, nil)
		}, 2},
		{"uploadSandboxFile", "201", func(t *testing.T) *testkit.Response {
			return sandboxUpload(t, s, w.member, sb, "/workspace/z.csv", "z.csv", "z")
		}, 1},
	})
}

// TestExpiredSandbox: an expired sandbox takes no files and starts no runs, and the
// collector removes it with the content only it held.
func TestExpiredSandbox(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	s := w.s
	sb := createSandbox(t, s, w.member)
	if r := sandboxUpload(t, s, w.member, sb, "/workspace/only-here.txt", "x", "only here"); r.Status != 201 {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	if _, err := openServerDB(t, s).Exec("UPDATE sandboxes SET expires_at = 1 WHERE id = ?", sb); err != nil {
		t.Fatal(err)
	}
	agent, _ := createAgent(t, s, w.team, w.owner, "Reader", true)
	runScenarios(t, s, []scenario{
		{name: "uploadSandboxFile", method: "POST", path: "/v2/sandboxes/" + sb + "/files?path=x", key: w.member, body: "x",
			wantStatus: 409, wantError: "conflict", wantContains: []string{"expired", "create a new sandbox"}},
		{name: "createSandboxUploadUrl", method: "POST", path: "/v2/sandboxes/" + sb + "/upload-urls", key: w.member, body: map[string]any{"path": "x"},
			wantStatus: 409, wantError: "conflict", wantContains: []string{"expired"}},
		badRequest("startRun", "POST", "/v2/teams/"+w.team+"/runs", w.member, map[string]any{"agent_id": agent, "sandbox_id": sb}, "sandbox_id"),
		{name: "listSandboxFiles still answers", method: "GET", path: "/v2/sandboxes/" + sb + "/files", key: w.viewer, wantStatus: 200, wantContains: []string{"only-here.txt"}},
	})
	_, gone, err := files.Collect(context.Background(), s.Blobs, s.Store, 0)
	if err != nil || gone != 1 {
		t.Fatalf("collect: %d sandboxes removed, %v", gone, err)
	}
	if strings.Contains(strings.Join(blobFiles(t, s), " "), sha256Hex("only here")) {
		t.Fatal("the expired sandbox's blob survived the collector")
	}
	if r := s.Do(t, "GET", "/v2/sandboxes/"+sb+"/files", w.viewer, nil); r.Status != 404 {
		t.Fatalf("collected sandbox: %d", r.Status)
	}
}

// TestCreateFileUploadUrlIdempotencyKey: a retried request with the same key gets the
// first answer back.
func TestCreateFileUploadUrlIdempotencyKey(t *testing.T) {
	w := newWorld(t, testkit.Options{})
	body := map[string]any{"fileName": "a.txt", "contentType": "text/plain"}
	path := "/v2/teams/" + w.team + "/files/create-upload-url"
	first := w.s.Do(t, "POST", path, w.member, body, "Idempotency-Key", "k1")
	again := w.s.Do(t, "POST", path, w.member, body, "Idempotency-Key", "k1")
	if first.Status != 200 || again.Status != 200 || string(first.Body) != string(again.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s / %d %s %v", first.Status, first.Body, again.Status, again.Body, again.Header)
	}
}
