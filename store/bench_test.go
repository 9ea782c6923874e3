package store_test

import (
	"testing"

	"docket/internal/testkit"
)

// BenchmarkRawFloor is the physical limit of job throughput on this box: claim and
// complete a minimal job row on one writer with the store's pragmas, using the
// one-statement claim of DESIGN §3, each as its own commit (as a worker would: claim,
// work, complete). Every real pipeline (cases, runs) does more per job, so it is
// measured against this number; testkit.RawFloor is the one measurement, shared with
// the pipeline benchmarks that report their ratio to it.
func BenchmarkRawFloor(b *testing.B) {
	b.ReportMetric(testkit.RawFloor(b, b.N), "jobs/s")
}
