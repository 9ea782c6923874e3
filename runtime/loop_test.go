package runtime

import (
	"strings"
	"testing"

	"github.com/ollama/ollama/api"
)

func TestFitContextElidesOldestToolResults(t *testing.T) {
	big := strings.Repeat("x", 4000)
	msgs := []api.Message{{Role: "system", Content: "SOP"}, {Role: "user", Content: "go"},
		{Role: "tool", Content: big}, {Role: "tool", Content: big}, {Role: "tool", Content: "small"}, {Role: "user", Content: "latest"}}
	got := fitContext(msgs, 2000) // budget 6000 characters
	if msgs[2].Content != big {
		t.Fatal("the caller's history was changed")
	}
	if got[0].Content != "SOP" || got[1].Role != "system" || !strings.Contains(got[1].Content, "1 older tool results were elided") {
		t.Fatalf("the SOP stays first and a note follows it: %+v", got[:2])
	}
	if !strings.HasPrefix(got[3].Content, "[elided") || got[4].Content != big || got[5].Content != "small" || got[6].Content != "latest" {
		t.Fatalf("only the oldest result is elided: %+v", got)
	}
	if fitted := fitContext(msgs, 16384); len(fitted) != len(msgs) {
		t.Fatal("a conversation that fits is sent as it is")
	}
}
