package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"docket/files"
	"docket/store"
)

// sandboxTTL is how long a sandbox takes uploads and can be started with.
const sandboxTTL = 24 * time.Hour

// SandboxPath names one of the team's sandboxes; another team's is 404.
type SandboxPath struct {
	SandboxID string `path:"sandbox_id" minLength:"1" doc:"The sandbox's id."`
}

type sandboxUploadOut struct {
	Path      string `json:"path" doc:"Path the file was uploaded to."`
	SizeBytes int64  `json:"size_bytes" doc:"Size of the uploaded file in bytes."`
}

type sandboxEntryJSON struct {
	Name      string `json:"name"`
	Path      string `json:"path"`
	Type      string `json:"type" enum:"file,dir"`
	SizeBytes int64  `json:"size_bytes"`
}

// liveSandbox returns the team's sandbox if it still takes files.
func (s *Server) liveSandbox(ctx context.Context, team, id string) (store.Sandbox, error) {
	sb, err := s.store.GetSandbox(ctx, team, id)
	if err != nil {
		return sb, err
	}
	if !time.Now().Before(sb.ExpiresAt) {
		return sb, apiError(http.StatusConflict, "sandbox %s expired at %s: create a new sandbox", id, sb.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return sb, nil
}

// storeSandboxUpload streams r into the blob store and puts it at p in the sandbox.
func (s *Server) storeSandboxUpload(ctx context.Context, a store.Actor, sandboxID, p string, r io.Reader) (store.SandboxFile, error) {
	if _, err := s.liveSandbox(ctx, a.TeamID, sandboxID); err != nil {
		return store.SandboxFile{}, err
	}
	b, err := s.putBlob(r)
	if err != nil {
		return store.SandboxFile{}, err
	}
	return s.store.PutSandboxFile(ctx, a, sandboxID, p, b.SHA256, b.Size, files.RefineContentType(p, b.ContentType))
}

func (s *Server) registerSandboxes() {
	tags := []string{"Sandboxes"}
	huma.Register(s.api, s.op(huma.Operation{OperationID: "createSandbox", Method: http.MethodPost, Path: "/v2/sandboxes",
		Summary: "Create a sandbox for a run's files", DefaultStatus: http.StatusCreated, Tags: tags,
		Description: "Upload files into it, then pass sandbox_id to startRun: the run reads them with read_file (/workspace/…). Sandboxes expire after 24 hours."}, store.RoleMember),
		func(ctx context.Context, in *struct{}) (*body[struct {
			SandboxID string    `json:"sandbox_id"`
			ExpiresAt Timestamp `json:"expires_at"`
		}], error) {
			sb, err := s.store.CreateSandbox(ctx, actor(ctx), sandboxTTL)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[struct {
				SandboxID string    `json:"sandbox_id"`
				ExpiresAt Timestamp `json:"expires_at"`
			}]{}
			out.Body.SandboxID, out.Body.ExpiresAt = sb.ID, ts(sb.ExpiresAt)
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "createSandboxUploadUrl", Method: http.MethodPost, Path: "/v2/sandboxes/{sandbox_id}/upload-urls",
		Summary: "Get a signed URL to upload a file into a sandbox", Description: "PUT the file's bytes to upload_url (no API key needed) within expires_in_seconds.", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *struct {
			SandboxPath
			Body struct {
				Path string `json:"path" minLength:"1" doc:"Where the file goes, e.g. /workspace/data.csv (a relative path is under /workspace)."`
			}
		}) (*body[struct {
			UploadURL        string `json:"upload_url" format:"uri"`
			Path             string `json:"path"`
			ExpiresInSeconds int    `json:"expires_in_seconds"`
		}], error) {
			p, err := files.CleanSandboxPath("path", in.Body.Path)
			if err != nil {
				return nil, pathErr(err)
			}
			if _, err := s.liveSandbox(ctx, principal(ctx).TeamID, in.SandboxID); err != nil {
				return nil, fail(ctx, err)
			}
			u, _ := s.signedURL(ctx, http.MethodPut, signedSandboxPrefix+in.SandboxID+p, nil)
			out := &body[struct {
				UploadURL        string `json:"upload_url" format:"uri"`
				Path             string `json:"path"`
				ExpiresInSeconds int    `json:"expires_in_seconds"`
			}]{}
			out.Body.UploadURL, out.Body.Path, out.Body.ExpiresInSeconds = u, p, int(files.DefaultURLTTL.Seconds())
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "listSandboxFiles", Method: http.MethodGet, Path: "/v2/sandboxes/{sandbox_id}/files",
		Summary: "List a sandbox folder", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *struct {
			SandboxPath
			Path string `query:"path" default:"/workspace" doc:"Folder to list (defaults to /workspace)."`
		}) (*body[struct {
			Files []sandboxEntryJSON `json:"files"`
		}], error) {
			dir := "/"
			if in.Path != "/" && in.Path != "" {
				p, err := files.CleanSandboxPath("path", strings.TrimSuffix(in.Path, "/"))
				if err != nil {
					return nil, pathErr(err)
				}
				dir = p + "/"
			}
			if _, err := s.store.GetSandbox(ctx, principal(ctx).TeamID, in.SandboxID); err != nil {
				return nil, fail(ctx, err)
			}
			fs, err := s.store.ListSandboxFiles(ctx, in.SandboxID, dir)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[struct {
				Files []sandboxEntryJSON `json:"files"`
			}]{}
			out.Body.Files = []sandboxEntryJSON{}
			seen := map[string]bool{}
			for _, f := range fs {
				rest := strings.TrimPrefix(f.Path, dir)
				if sub, _, ok := strings.Cut(rest, "/"); ok {
					if !seen[sub] {
						seen[sub] = true
						out.Body.Files = append(out.Body.Files, sandboxEntryJSON{Name: sub, Path: dir + sub, Type: "dir"})
					}
					continue
				}
				out.Body.Files = append(out.Body.Files, sandboxEntryJSON{Name: path.Base(f.Path), Path: f.Path, Type: "file", SizeBytes: f.Size})
			}
			return out, nil
		})

	upload := s.op(huma.Operation{OperationID: "uploadSandboxFile", Method: http.MethodPost, Path: "/v2/sandboxes/{sandbox_id}/files",
		Summary: "Upload a file into a sandbox", DefaultStatus: http.StatusCreated, Tags: tags,
		Description: "multipart/form-data with a `file` part and an optional `path` field (default /workspace/<file name>), " +
			"or the raw bytes as the body with ?path=. The body streams to disk; the server's --max-file-size applies (413 above it)."}, store.RoleMember)
	huma.Register(s.api, upload, func(ctx context.Context, in *struct {
		SandboxPath
		Path string `query:"path" doc:"Where the file goes; required for a raw body, else taken from the form's path field or the file name."`
	}) (*body[sandboxUploadOut], error) {
		r := requestFrom(ctx)
		a := actor(ctx)
		if _, err := s.liveSandbox(ctx, a.TeamID, in.SandboxID); err != nil {
			return nil, fail(ctx, err)
		}
		target := func(field, p string) (string, error) {
			clean, err := files.CleanSandboxPath(field, p)
			return clean, pathErr(err)
		}
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if !strings.HasPrefix(mt, "multipart/") {
			if in.Path == "" {
				return nil, badRequest("path: required when the body is the file itself (or send multipart/form-data with a file part)")
			}
			p, err := target("path", in.Path)
			if err != nil {
				return nil, err
			}
			f, err := s.storeSandboxUpload(ctx, a, in.SandboxID, p, r.Body)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[sandboxUploadOut]{Body: sandboxUploadOut{Path: f.Path, SizeBytes: f.Size}}, nil
		}
		f, err := s.multipartSandboxUpload(ctx, r, a, in.SandboxID, in.Path)
		if err != nil {
			return nil, err
		}
		return &body[sandboxUploadOut]{Body: sandboxUploadOut{Path: f.Path, SizeBytes: f.Size}}, nil
	})
	// Documented after registering: declared before, huma would read and parse the body
	// itself instead of letting the handler stream it.
	s.api.OpenAPI().Paths[upload.Path].Post.RequestBody = &huma.RequestBody{Content: map[string]*huma.MediaType{
		"multipart/form-data": {Schema: &huma.Schema{Type: "object", Required: []string{"file"}, Properties: map[string]*huma.Schema{
			"file": {Type: "string", Format: "binary"},
			"path": {Type: "string", Description: "Where the file goes, e.g. /workspace/data.csv."},
		}}},
		"application/octet-stream": {Schema: &huma.Schema{Type: "string", Format: "binary"}},
	}}
}

// multipartSandboxUpload reads a multipart body part by part: the file part streams into
// the blob store (whichever order the parts come in), so nothing is held in memory.
func (s *Server) multipartSandboxUpload(ctx context.Context, r *http.Request, a store.Actor, sandboxID, queryPath string) (store.SandboxFile, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return store.SandboxFile{}, badRequest("body: not a readable multipart form: %s", err)
	}
	var blob *files.Blob
	var fileName string
	fieldPath := queryPath
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var mb *http.MaxBytesError
			if errors.As(err, &mb) {
				return store.SandboxFile{}, s.tooLarge(0)
			}
			return store.SandboxFile{}, badRequest("body: broken multipart form: %s", err)
		}
		switch part.FormName() {
		case "file":
			if blob != nil {
				return store.SandboxFile{}, badRequest("file: send one file per upload")
			}
			b, err := s.putBlob(part)
			if err != nil {
				return store.SandboxFile{}, fail(ctx, err)
			}
			blob, fileName = &b, part.FileName()
		case "path":
			v, err := io.ReadAll(io.LimitReader(part, files.MaxPathLen+1))
			if err != nil {
				return store.SandboxFile{}, badRequest("path: %s", err)
			}
			fieldPath = string(v)
		}
		part.Close()
	}
	if blob == nil {
		return store.SandboxFile{}, badRequest("file: the multipart form has no file part")
	}
	field, p := "path", fieldPath
	if p == "" {
		field, p = "file", fileName
	}
	if p == "" {
		return store.SandboxFile{}, badRequest("path: give a path field, ?path=, or a file name on the file part")
	}
	clean, err := files.CleanSandboxPath(field, p)
	if err != nil {
		return store.SandboxFile{}, pathErr(err)
	}
	f, err := s.store.PutSandboxFile(ctx, a, sandboxID, clean, blob.SHA256, blob.Size, files.RefineContentType(clean, blob.ContentType))
	if err != nil {
		return store.SandboxFile{}, fail(ctx, fmt.Errorf("sandbox upload: %w", err))
	}
	return f, nil
}
