package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// putSigned asks the real binary for an upload URL and PUTs body to it without a key.
func putSigned(t *testing.T, s *server, key apiKey, name, body string) (int, string) {
	t.Helper()
	status, b := s.call(t, "POST", "/v2/teams/"+key.TeamID+"/files/create-upload-url", key.Key,
		map[string]any{"fileName": name, "contentType": "application/octet-stream"})
	if status != 200 {
		t.Fatalf("createFileUploadUrl: %d %s", status, b)
	}
	var out struct{ SignedURL string }
	json.Unmarshal(b, &out)
	req, _ := http.NewRequest("PUT", out.SignedURL, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(rb)
}

// TestMaxFileSizeFromFlagAndEnvironment: DOCKET_MAX_FILE_SIZE and --max-file-size set the
// upload limit of the real binary (the flag wins), the 413 names it, and an accepted
// upload lands in <data>/blobs by its hash.
func TestMaxFileSizeFromFlagAndEnvironment(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	s := startServe(t, data, []string{"DOCKET_MAX_FILE_SIZE=1024"})
	key := createKey(t, data)
	body := strings.Repeat("z", 2048)
	if status, b := putSigned(t, s, key, "big.txt", body); status != 413 || !strings.Contains(b, "limit of 1024 bytes (1 KiB)") {
		t.Fatalf("2 KiB upload under DOCKET_MAX_FILE_SIZE=1024: %d %s", status, b)
	}
	s.stop(t)

	s = startServe(t, data, []string{"DOCKET_MAX_FILE_SIZE=1024"}, "--max-file-size", "4096")
	if status, b := putSigned(t, s, key, "big.txt", body); status != 200 {
		t.Fatalf("2 KiB upload under --max-file-size 4096: %d %s", status, b)
	}
	sum := sha256.Sum256([]byte(body))
	h := hex.EncodeToString(sum[:])
	if got, err := os.ReadFile(filepath.Join(data, "blobs", "sha256", h[:2], h[2:4], h)); err != nil || string(got) != body {
		t.Fatalf("blob on disk: %v", err)
	}
	s.stop(t)

	bad := launch(t, data, []string{"DOCKET_MAX_FILE_SIZE=lots"})
	if err := bad.waitURL(15 * time.Second); err == nil || !strings.Contains(bad.stderr.String(), "DOCKET_MAX_FILE_SIZE") {
		t.Fatalf("a malformed DOCKET_MAX_FILE_SIZE: %v\n%s", err, bad.stderr)
	}
}
