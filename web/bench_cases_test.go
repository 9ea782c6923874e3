package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"docket/internal/testkit"
)

// BenchmarkCreateCases measures createCases over real HTTP: batches of 100 cases (title,
// data, priority; with two labels each in the labels variant), each batch one
// authenticated request and one transaction (cases, full-text index, a created event per
// case, the audit row), from parallel clients (2 per GOMAXPROCS) on keep-alive
// connections. One iteration is one batch; the figure to read is cases/s (DESIGN §13:
// ≥20,000).
func BenchmarkCreateCases(b *testing.B) {
	for _, variant := range []struct {
		name   string
		labels bool
	}{{"plain", false}, {"labels", true}} {
		b.Run(variant.name, func(b *testing.B) {
			s := testkit.StartServer(b, testkit.Options{})
			db := openServerDB(b, s)
			queue := sqlInsertQueue(b, db, s.TeamID, "Bench")
			var batch []map[string]any
			for i := range 100 {
				c := map[string]any{"title": fmt.Sprintf("Invoice %d from ACME", i), "priority": []string{"none", "medium", "high"}[i%3],
					"data": fmt.Sprintf(`{"invoice": %d, "amount": %d, "currency": "EUR", "note": "check the totals and the VAT number"}`, i, i*7)}
				if variant.labels {
					c["labels"] = []any{map[string]any{"key": "vendor", "value": fmt.Sprintf("vendor-%d", i%10)}, map[string]any{"value": "inbox"}}
				}
				batch = append(batch, c)
			}
			body, err := json.Marshal(map[string]any{"cases": batch})
			if err != nil {
				b.Fatal(err)
			}
			url := s.URL + "/v2/queues/" + queue + "/cases"
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			defer client.CloseIdleConnections()

			b.ResetTimer()
			start := time.Now()
			b.SetParallelism(2)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+s.OwnerKey)
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						b.Errorf("createCases: status %d", resp.StatusCode)
						return
					}
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N*100)/elapsed.Seconds(), "cases/s")
			var n int
			if err := db.QueryRow("SELECT count(*) FROM cases WHERE queue_id = ?", queue).Scan(&n); err != nil || n != b.N*100 {
				b.Fatalf("%d cases in the queue after %d batches of 100 (err %v)", n, b.N, err)
			}
		})
	}
}
