package runtime

import (
	"encoding/json"
	"fmt"
)

// humanTools are the tools through which the model itself asks a person: their "run" is
// the gate the runtime opens, and the person's decision becomes their result.
func humanTools() []*Tool {
	return []*Tool{
		{
			Name:        "request_human_approval",
			Description: "Ask a person to approve before you continue. Use it before any irreversible step. The result says whether it was approved, by whom and why.",
			Schema: `{"type":"object","required":["title","description"],"properties":{
				"title":{"type":"string","description":"Short title of what needs approval"},
				"description":{"type":"string","description":"What you are about to do and why"},
				"details":{"type":"string","description":"Optional extra context, e.g. the draft you want to send"}}}`,
			Human: "approval",
		},
		{
			Name:        "ask_human",
			Description: "Ask a person one or more questions and wait for the answers.",
			Schema: `{"type":"object","required":["questions"],"properties":{"questions":{"type":"array","items":{"type":"object","required":["question"],"properties":{
				"question":{"type":"string"},"header":{"type":"string"},
				"options":{"type":"array","items":{"type":"object","required":["label"],"properties":{"label":{"type":"string"},"description":{"type":"string"}}}},
				"multi_select":{"type":"boolean"}}}}}}`,
			Human: "question",
		},
	}
}

// question is one entry of ask_human's questions, as the API shows it.
type question struct {
	Question string `json:"question"`
	Header   string `json:"header,omitempty"`
	Options  []struct {
		Label       string `json:"label"`
		Description string `json:"description,omitempty"`
	} `json:"options,omitempty"`
	MultiSelect bool `json:"multi_select,omitempty"`
}

// parseQuestions validates ask_human's arguments; the error is shown to the model.
func parseQuestions(args map[string]any) (json.RawMessage, error) {
	raw, err := json.Marshal(args["questions"])
	if err != nil {
		return nil, err
	}
	var qs []question
	if err := json.Unmarshal(raw, &qs); err != nil || len(qs) == 0 {
		return nil, fmt.Errorf(`argument "questions" must be a non-empty list of {"question": "...", "options": [{"label": "..."}]}`)
	}
	seen := map[string]bool{}
	for i, q := range qs {
		if q.Question == "" {
			return nil, fmt.Errorf("questions[%d].question must be a non-empty string", i)
		}
		if seen[q.Question] {
			return nil, fmt.Errorf("questions[%d]: %q is asked twice", i, q.Question)
		}
		seen[q.Question] = true
	}
	return json.Marshal(qs)
}
