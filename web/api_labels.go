package web

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"docket/store"
)

// queueLabelJSON is a label as the queue's label operations return it, with how many
// cases carry it.
type queueLabelJSON struct {
	ID        string `json:"id" format:"uuid"`
	Key       string `json:"key"`
	Value     string `json:"value" minLength:"1"`
	ColorHue  int    `json:"color_hue" minimum:"0" maximum:"360"`
	CaseCount int    `json:"case_count" minimum:"0"`
}

func queueLabelOut(l store.Label) queueLabelJSON {
	return queueLabelJSON{ID: l.ID, Key: l.Key, Value: l.Value, ColorHue: l.ColorHue, CaseCount: l.CaseCount}
}

// assignedLabelJSON is a label on a case.
type assignedLabelJSON struct {
	ID       string `json:"id" format:"uuid"`
	Key      string `json:"key"`
	Value    string `json:"value" minLength:"1"`
	ColorHue int    `json:"color_hue" minimum:"0" maximum:"360"`
}

func assignedLabelsOut(ls []store.Label) []assignedLabelJSON {
	out := make([]assignedLabelJSON, 0, len(ls))
	for _, l := range ls {
		out = append(out, assignedLabelJSON{ID: l.ID, Key: l.Key, Value: l.Value, ColorHue: l.ColorHue})
	}
	return out
}

type queueLabelsOut struct {
	Labels []queueLabelJSON `json:"labels"`
}

type queueLabelOutBody struct {
	Label queueLabelJSON `json:"label"`
}

type caseLabelsOut struct {
	Labels []assignedLabelJSON `json:"labels"`
}

// LabelPage is the reference's paging for label lists (up to 1000 at once). This and
// the other embedded input types here are exported because huma skips the fields of
// unexported embedded structs.
type LabelPage struct {
	Limit  int `query:"limit" default:"1000" minimum:"1" maximum:"1000" doc:"Maximum number of labels to return."`
	Offset int `query:"offset" minimum:"0" doc:"Zero-based offset for pagination."`
}

// LabelIDPath names one of a queue's labels.
type LabelIDPath struct {
	QueueIDPath
	LabelID string `path:"label_id" format:"uuid" doc:"The label's unique identifier."`
}

// CaseLabelsPath names a case of a queue.
type CaseLabelsPath struct {
	QueueIDPath
	CaseID string `path:"case_id" format:"uuid" doc:"The case's unique identifier."`
}

// LabelKVBody is a label given by key and value.
type LabelKVBody struct {
	Key   string `json:"key,omitempty" default:"" maxLength:"100" doc:"Optional key, e.g. customer in customer:acme."`
	Value string `json:"value" minLength:"1" maxLength:"200"`
}

func (s *Server) registerLabels() {
	tags := []string{"Cases"} // the reference files labels under Cases
	huma.Register(s.api, s.op(huma.Operation{OperationID: "listQueueLabels", Method: http.MethodGet, Path: "/v2/queues/{queue_id}/labels",
		Summary: "List a queue's labels with how many cases carry each", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *struct {
			QueueIDPath
			LabelPage
		}) (*body[queueLabelsOut], error) {
			ls, err := s.store.ListQueueLabels(ctx, principal(ctx).TeamID, in.QueueID, in.Limit, in.Offset)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[queueLabelsOut]{Body: queueLabelsOut{Labels: []queueLabelJSON{}}}
			for _, l := range ls {
				out.Body.Labels = append(out.Body.Labels, queueLabelOut(l))
			}
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "createQueueLabel", Method: http.MethodPost, Path: "/v2/queues/{queue_id}/labels",
		Summary: "Create a label on a queue without assigning it to a case", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *struct {
			QueueIDPath
			Body struct {
				LabelKVBody
				ColorHue *int `json:"color_hue,omitempty" minimum:"0" maximum:"360" doc:"Hue of the label's colour; default: one derived from key and value."`
			}
		}) (*body[queueLabelOutBody], error) {
			kv := store.LabelKV{Key: in.Body.Key, Value: in.Body.Value}
			l, err := s.store.CreateQueueLabel(ctx, actor(ctx), in.QueueID, kv, in.Body.ColorHue)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[queueLabelOutBody]{Body: queueLabelOutBody{Label: queueLabelOut(l)}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "updateQueueLabel", Method: http.MethodPatch, Path: "/v2/queues/{queue_id}/labels/{label_id}",
		Summary: "Rename or recolour a label", Description: "Renaming key/value affects every case assigned to this label. " +
			"value may be left out to change only the key or the colour.", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *struct {
			LabelIDPath
			Body struct {
				Key      *string `json:"key,omitempty" maxLength:"100"`
				Value    *string `json:"value,omitempty" minLength:"1" maxLength:"200"`
				ColorHue *int    `json:"color_hue,omitempty" minimum:"0" maximum:"360"`
			}
		}) (*body[queueLabelOutBody], error) {
			p := store.LabelPatch{Key: in.Body.Key, Value: in.Body.Value, ColorHue: in.Body.ColorHue}
			l, err := s.store.UpdateQueueLabel(ctx, actor(ctx), in.QueueID, in.LabelID, p)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[queueLabelOutBody]{Body: queueLabelOutBody{Label: queueLabelOut(l)}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "deleteQueueLabel", Method: http.MethodDelete, Path: "/v2/queues/{queue_id}/labels/{label_id}",
		Summary: "Delete a label and take it off every case", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *LabelIDPath) (*body[successOut], error) {
			if err := s.store.DeleteQueueLabel(ctx, actor(ctx), in.QueueID, in.LabelID); err != nil {
				return nil, fail(ctx, err)
			}
			return &body[successOut]{Body: successOut{Success: true}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "listCaseLabels", Method: http.MethodGet, Path: "/v2/queues/{queue_id}/cases/{case_id}/labels",
		Summary: "List the labels on a case", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *struct {
			CaseLabelsPath
			LabelPage
		}) (*body[caseLabelsOut], error) {
			ls, err := s.store.ListCaseLabels(ctx, principal(ctx).TeamID, in.QueueID, in.CaseID, in.Limit, in.Offset)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[caseLabelsOut]{Body: caseLabelsOut{Labels: assignedLabelsOut(ls)}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "assignCaseLabels", Method: http.MethodPost, Path: "/v2/queues/{queue_id}/cases/{case_id}/labels",
		Summary:     "Assign labels to a case, creating the ones the queue lacks",
		Description: "Returns the labels named in the request, once each. The case's history records the labels it did not already carry.", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *struct {
			CaseLabelsPath
			Body struct {
				Labels []LabelKVBody `json:"labels" minItems:"1" maxItems:"50"`
			}
		}) (*body[caseLabelsOut], error) {
			if len(in.Body.Labels) == 0 { // null passes the schema's minItems
				return nil, badRequest("labels: name at least one label")
			}
			kv := make([]store.LabelKV, len(in.Body.Labels))
			for i, l := range in.Body.Labels {
				kv[i] = store.LabelKV{Key: l.Key, Value: l.Value}
			}
			ls, err := s.store.AssignCaseLabels(ctx, actor(ctx), in.QueueID, in.CaseID, kv)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[caseLabelsOut]{Body: caseLabelsOut{Labels: assignedLabelsOut(ls)}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "unlinkCaseLabels", Method: http.MethodPost, Path: "/v2/queues/{queue_id}/cases/{case_id}/labels/unlink",
		Summary: "Remove labels from a case", Description: "Every id must name a label of the queue; one the case does not carry is skipped.", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *struct {
			CaseLabelsPath
			Body struct {
				LabelIDs []string `json:"label_ids" minItems:"1" maxItems:"1000"`
			}
		}) (*body[successOut], error) {
			if len(in.Body.LabelIDs) == 0 { // null passes the schema's minItems
				return nil, badRequest("label_ids: name at least one label id")
			}
			if err := s.store.UnlinkCaseLabels(ctx, actor(ctx), in.QueueID, in.CaseID, in.Body.LabelIDs); err != nil {
				return nil, fail(ctx, err)
			}
			return &body[successOut]{Body: successOut{Success: true}}, nil
		})
}
