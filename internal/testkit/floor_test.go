package testkit

import "testing"

func TestRawFloorCompletesEveryJob(t *testing.T) {
	if rate := RawFloor(t, 200); rate <= 0 {
		t.Fatalf("RawFloor = %v jobs/s, want a positive rate", rate)
	}
}
