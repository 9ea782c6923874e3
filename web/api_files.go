package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"

	"docket/files"
	"docket/store"
)

// signedFilesPrefix and signedSandboxPrefix are where signed URLs point: no API key, the
// signature in the query is the credential (files.Signer).
const (
	signedFilesPrefix   = "/v2/signed/files/"
	signedSandboxPrefix = "/v2/signed/sandboxes/"
)

type fileMetadataJSON struct {
	_        struct{} `nullable:"true"`
	Mimetype string   `json:"mimetype"`
	Size     int64    `json:"size"`
}

// fileJSON is a team file as listFiles and getRun's artifacts show it.
type fileJSON struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Path      string            `json:"path"`
	CreatedAt Timestamp         `json:"created_at"`
	UpdatedAt Timestamp         `json:"updated_at"`
	Metadata  *fileMetadataJSON `json:"metadata"`
	SHA256    string            `json:"sha256" doc:"docket addition: the content's SHA-256; equal content, equal hash."`
	RunID     *string           `json:"run_id" nullable:"true" doc:"docket addition: the run that wrote the file."`
	CaseID    *string           `json:"case_id" nullable:"true" doc:"docket addition: the case the file came with."`
}

func fileOut(f store.File) fileJSON {
	return fileJSON{ID: f.ID, Name: path.Base(f.Path), Path: f.Path, CreatedAt: ts(f.CreatedAt), UpdatedAt: ts(f.UpdatedAt),
		Metadata: &fileMetadataJSON{Mimetype: f.ContentType, Size: f.Size}, SHA256: f.SHA256, RunID: f.RunID, CaseID: f.CaseID}
}

type listFilesOut struct {
	Files  []fileJSON `json:"files"`
	Total  int        `json:"total" doc:"docket addition: how many files match the prefix."`
	Limit  int        `json:"limit" doc:"docket addition."`
	Offset int        `json:"offset" doc:"docket addition."`
}

// FilePath names a team file by its path, the {*} of the reference's file routes.
type FilePath struct {
	TeamPath
	Path string `path:"path..." minLength:"1" doc:"Path of the file relative to the team's storage root, e.g. invoices/2026/a.pdf."`
}

// pathErr turns a refused path into a 400 naming the field and the value.
func pathErr(err error) error {
	var pe *files.PathError
	if errors.As(err, &pe) {
		return badRequest("%s", pe.Error())
	}
	return err
}

// tooLarge is the 413 every upload answers over the limit, naming it.
func (s *Server) tooLarge(size int64) error {
	if size > 0 {
		return apiError(http.StatusRequestEntityTooLarge, "file is %d bytes, larger than the limit of %d bytes (%s): the server's --max-file-size (DOCKET_MAX_FILE_SIZE) sets it",
			size, s.cfg.MaxFileSize, humanBytes(s.cfg.MaxFileSize))
	}
	return apiError(http.StatusRequestEntityTooLarge, "file is larger than the limit of %d bytes (%s): the server's --max-file-size (DOCKET_MAX_FILE_SIZE) sets it",
		s.cfg.MaxFileSize, humanBytes(s.cfg.MaxFileSize))
}

func humanBytes(n int64) string {
	for _, u := range []struct {
		unit string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.unit)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

// putBlob stores an upload, mapping the limit to 413.
func (s *Server) putBlob(r io.Reader) (files.Blob, error) {
	b, err := s.cfg.Blobs.Put(r, s.cfg.MaxFileSize)
	var tl *files.TooLargeError
	if errors.As(err, &tl) {
		return b, s.tooLarge(0)
	}
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return b, s.tooLarge(0)
	}
	return b, err
}

// baseURL is the scheme and host the client reached us by, for the signed URLs we hand out.
func baseURL(ctx context.Context) string {
	r := requestFrom(ctx)
	if r == nil {
		return ""
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// signedURL signs method on urlPath for the current principal's team.
func (s *Server) signedURL(ctx context.Context, method, urlPath string, extra url.Values) (string, Timestamp) {
	p := principal(ctx)
	if extra == nil {
		extra = url.Values{}
	}
	extra.Set("uid", p.UserID)
	q, exp := s.signer.Sign(method, urlPath, p.TeamID, files.DefaultURLTTL, extra)
	return baseURL(ctx) + (&url.URL{Path: urlPath}).EscapedPath() + "?" + q.Encode(), ts(exp)
}

func (s *Server) registerFiles() {
	tags := []string{"Files"}
	huma.Register(s.api, s.op(huma.Operation{OperationID: "listFiles", Method: http.MethodGet, Path: "/v2/teams/{teamId}/files",
		Summary: "List the team's files", Description: "Files by path. docket additions: prefix, limit and offset.", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *struct {
			TeamPath
			Prefix string `query:"prefix" doc:"docket addition: only paths starting with this, e.g. invoices/ or runs/<run id>/."`
			Limit  int    `query:"limit" default:"100" minimum:"1" maximum:"1000" doc:"docket addition: how many files to return."`
			Offset int    `query:"offset" minimum:"0" doc:"docket addition: how many files to skip."`
		}) (*body[listFilesOut], error) {
			prefix, err := files.CleanPrefix("prefix", in.Prefix)
			if err != nil {
				return nil, pathErr(err)
			}
			fs, total, err := s.store.ListFiles(ctx, in.TeamID, prefix, in.Limit, in.Offset)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[listFilesOut]{Body: listFilesOut{Files: []fileJSON{}, Total: total, Limit: in.Limit, Offset: in.Offset}}
			for _, f := range fs {
				out.Body.Files = append(out.Body.Files, fileOut(f))
			}
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "createFileUploadUrl", Method: http.MethodPost, Path: "/v2/teams/{teamId}/files/create-upload-url",
		Summary: "Get a signed URL to upload a file", Tags: tags,
		Description: "PUT the file's bytes to signedUrl (no API key needed) before expiresAt, 15 minutes from now. " +
			"An existing file at the path is replaced. Files larger than the server's --max-file-size are refused with 413."}, store.RoleMember),
		func(ctx context.Context, in *struct {
			TeamPath
			Body struct {
				FileName    string `json:"fileName" minLength:"1" doc:"Path of the file to upload, relative to the team's root, e.g. a.pdf or invoices/2026/a.pdf."`
				ContentType string `json:"contentType" minLength:"1" doc:"MIME type of the file; application/octet-stream lets docket detect it."`
			}
		}) (*body[struct {
			SignedURL string    `json:"signedUrl" format:"uri"`
			ExpiresAt Timestamp `json:"expiresAt"`
			FilePath  string    `json:"filePath"`
		}], error) {
			p, err := files.CleanPath("fileName", in.Body.FileName)
			if err != nil {
				return nil, pathErr(err)
			}
			if _, _, err := mime.ParseMediaType(in.Body.ContentType); err != nil {
				return nil, badRequest("contentType %q is not a MIME type: use e.g. application/pdf or text/csv", in.Body.ContentType)
			}
			u, exp := s.signedURL(ctx, http.MethodPut, signedFilesPrefix+p, url.Values{"content_type": {in.Body.ContentType}})
			out := &body[struct {
				SignedURL string    `json:"signedUrl" format:"uri"`
				ExpiresAt Timestamp `json:"expiresAt"`
				FilePath  string    `json:"filePath"`
			}]{}
			out.Body.SignedURL, out.Body.ExpiresAt, out.Body.FilePath = u, exp, p
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "getFileDownloadUrl", Method: http.MethodGet, Path: "/v2/teams/{teamId}/files/download-url/{path...}",
		Summary: "Get a signed URL to download a file", Description: "GET url (no API key needed) before expiresAt, 15 minutes from now.", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *FilePath) (*body[struct {
			URL       string    `json:"url" format:"uri"`
			ExpiresAt Timestamp `json:"expiresAt"`
		}], error) {
			p, err := files.CleanPath("path", in.Path)
			if err != nil {
				return nil, pathErr(err)
			}
			if _, err := s.store.GetFile(ctx, in.TeamID, p); err != nil {
				return nil, fail(ctx, err)
			}
			u, exp := s.signedURL(ctx, http.MethodGet, signedFilesPrefix+p, nil)
			out := &body[struct {
				URL       string    `json:"url" format:"uri"`
				ExpiresAt Timestamp `json:"expiresAt"`
			}]{}
			out.Body.URL, out.Body.ExpiresAt = u, exp
			return out, nil
		})

	type contentOut struct {
		Content     string `json:"content"`
		Path        string `json:"path"`
		ContentType string `json:"contentType,omitempty"`
	}
	huma.Register(s.api, s.op(huma.Operation{OperationID: "getFileContent", Method: http.MethodGet, Path: "/v2/teams/{teamId}/files/content/{path...}",
		Summary: "Read a text file", Description: "Text files up to the JSON body cap (10 MiB by default); use getFileDownloadUrl for anything else.", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *FilePath) (*body[contentOut], error) {
			p, err := files.CleanPath("path", in.Path)
			if err != nil {
				return nil, pathErr(err)
			}
			f, err := s.store.GetFile(ctx, in.TeamID, p)
			if err != nil {
				return nil, fail(ctx, err)
			}
			if !files.IsText(f.ContentType) {
				return nil, badRequest("file %q is %s, not text: download it with getFileDownloadUrl", p, f.ContentType)
			}
			if f.Size > s.cfg.MaxBodyBytes {
				return nil, badRequest("file %q is %d bytes, more than getFileContent returns (%d): download it with getFileDownloadUrl", p, f.Size, s.cfg.MaxBodyBytes)
			}
			fh, err := s.cfg.Blobs.Open(f.SHA256)
			if err != nil {
				return nil, fail(ctx, fmt.Errorf("open blob of %s: %w", p, err))
			}
			defer fh.Close()
			b, err := io.ReadAll(fh)
			if err != nil {
				return nil, fail(ctx, fmt.Errorf("read blob of %s: %w", p, err))
			}
			if !utf8.Valid(b) {
				return nil, badRequest("file %q is not valid UTF-8 text: download it with getFileDownloadUrl", p)
			}
			return &body[contentOut]{Body: contentOut{Content: string(b), Path: p, ContentType: f.ContentType}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "updateFileContent", Method: http.MethodPut, Path: "/v2/teams/{teamId}/files/content/{path...}",
		Summary: "Replace a text file's content", Description: "The file must exist (create files with createFileUploadUrl).", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *struct {
			FilePath
			Body struct {
				Content string `json:"content" doc:"New UTF-8 text content for the file."`
			}
		}) (*body[successOut], error) {
			p, err := files.CleanPath("path", in.Path)
			if err != nil {
				return nil, pathErr(err)
			}
			if _, err := s.store.GetFile(ctx, in.TeamID, p); err != nil {
				return nil, fail(ctx, err)
			}
			b, err := s.putBlob(strings.NewReader(in.Body.Content))
			if err != nil {
				return nil, fail(ctx, err)
			}
			p2 := principal(ctx)
			_, err = s.store.PutFile(ctx, actor(ctx), store.NewFile{TeamID: p2.TeamID, Path: p, SHA256: b.SHA256, Size: b.Size,
				ContentType: files.RefineContentType(p, b.ContentType), CreatedBy: p2.UserID})
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[successOut]{Body: successOut{Success: true}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "renameFile", Method: http.MethodPatch, Path: "/v2/teams/{teamId}/files",
		Summary: "Rename a file", Description: "Renames within its folder and keeps its extension; a file already at the new name answers 409.", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *struct {
			TeamPath
			Body struct {
				RelativePath    string `json:"relativePath" minLength:"1" doc:"Current path of the file."`
				NewFilenameOnly string `json:"newFilenameOnly" minLength:"1" doc:"New file name without extension; the existing extension is kept."`
			}
		}) (*body[struct {
			Success bool   `json:"success"`
			Path    string `json:"path" doc:"docket addition: the file's new path."`
		}], error) {
			from, err := files.CleanPath("relativePath", in.Body.RelativePath)
			if err != nil {
				return nil, pathErr(err)
			}
			name := in.Body.NewFilenameOnly
			if strings.ContainsAny(name, "/\\") {
				return nil, badRequest("newFilenameOnly %q must be a name only, without folders: the file stays in its folder", name)
			}
			dir := path.Dir(from)
			to := name + path.Ext(from)
			if dir != "." {
				to = dir + "/" + to
			}
			if _, err := files.CleanPath("newFilenameOnly", to); err != nil {
				var pe *files.PathError
				errors.As(err, &pe)
				return nil, badRequest("newFilenameOnly %q gives the path %q, which is not valid: %s", name, to, pe.Reason)
			}
			f, err := s.store.RenameFile(ctx, actor(ctx), from, to)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[struct {
				Success bool   `json:"success"`
				Path    string `json:"path" doc:"docket addition: the file's new path."`
			}]{}
			out.Body.Success, out.Body.Path = true, f.Path
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "deleteFile", Method: http.MethodDelete, Path: "/v2/teams/{teamId}/files/{path...}",
		Summary: "Delete a file", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *FilePath) (*body[successOut], error) {
			p, err := files.CleanPath("path", in.Path)
			if err != nil {
				return nil, pathErr(err)
			}
			if err := s.store.DeleteFile(ctx, actor(ctx), p); err != nil {
				return nil, fail(ctx, err)
			}
			return &body[successOut]{Body: successOut{Success: true}}, nil
		})

	s.mux.HandleFunc(signedFilesPrefix+"{path...}", s.signedFile)
	s.mux.HandleFunc(signedSandboxPrefix+"{sandbox_id}/{path...}", s.signedSandboxFile)
}

// verifySigned checks a signed request; HEAD is allowed wherever GET is.
func (s *Server) verifySigned(w http.ResponseWriter, r *http.Request) (team, uid string, ok bool) {
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	team, err := s.signer.Verify(method, r.URL.Path, r.URL.Query())
	switch {
	case errors.Is(err, files.ErrURLExpired):
		writeError(w, apiError(http.StatusForbidden, "%s: ask for a new URL", err))
		return "", "", false
	case err != nil:
		writeError(w, apiError(http.StatusForbidden, "signed URL refused: its signature does not match this method (%s), path and parameters; use the URL exactly as it was given, with the method it was made for", r.Method))
		return "", "", false
	}
	return team, r.URL.Query().Get("uid"), true
}

// signedFile serves a team file's signed URLs: GET (and HEAD) downloads, PUT uploads.
func (s *Server) signedFile(w http.ResponseWriter, r *http.Request) {
	team, uid, ok := s.verifySigned(w, r)
	if !ok {
		return
	}
	p, err := files.CleanPath("path", r.PathValue("path"))
	if err != nil {
		writeError(w, pathErr(err).(*APIError))
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		f, err := s.store.GetFile(r.Context(), team, p)
		if err != nil {
			s.writeFail(w, r, err)
			return
		}
		s.serveBlob(w, r, f.SHA256, f.ContentType, path.Base(p), f.UpdatedAt)
	case http.MethodPut:
		if r.ContentLength > s.cfg.MaxFileSize {
			writeError(w, s.tooLarge(r.ContentLength).(*APIError))
			return
		}
		b, err := s.putBlob(r.Body)
		if err != nil {
			s.writeFail(w, r, err)
			return
		}
		ctype := r.URL.Query().Get("content_type")
		if base, _, err := mime.ParseMediaType(ctype); err != nil || base == "application/octet-stream" {
			ctype = files.RefineContentType(p, b.ContentType)
		}
		a := store.Actor{TeamID: team, UserID: uid, Channel: "signed_url", Operation: "uploadFile", IP: clientIP(r)}
		f, err := s.store.PutFile(r.Context(), a, store.NewFile{TeamID: team, Path: p, SHA256: b.SHA256, Size: b.Size, ContentType: ctype, CreatedBy: uid})
		if err != nil {
			s.writeFail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(mustJSON(map[string]any{"file": fileOut(f)}))
	}
}

// signedSandboxFile takes uploads to a sandbox through its signed URLs (PUT).
func (s *Server) signedSandboxFile(w http.ResponseWriter, r *http.Request) {
	team, uid, ok := s.verifySigned(w, r)
	if !ok {
		return
	}
	if r.Method != http.MethodPut {
		writeError(w, apiError(http.StatusForbidden, "signed sandbox URLs take PUT uploads only"))
		return
	}
	p, err := files.CleanSandboxPath("path", "/"+r.PathValue("path"))
	if err != nil {
		writeError(w, pathErr(err).(*APIError))
		return
	}
	if r.ContentLength > s.cfg.MaxFileSize {
		writeError(w, s.tooLarge(r.ContentLength).(*APIError))
		return
	}
	a := store.Actor{TeamID: team, UserID: uid, Channel: "signed_url", Operation: "uploadSandboxFile", IP: clientIP(r)}
	f, err := s.storeSandboxUpload(r.Context(), a, r.PathValue("sandbox_id"), p, r.Body)
	if err != nil {
		s.writeFail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	w.Write(mustJSON(sandboxUploadOut{Path: f.Path, SizeBytes: f.Size}))
}

// serveBlob streams a blob from disk: ranges, conditional requests and HEAD come from
// http.ServeContent; nothing is read into memory.
func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request, sha, ctype, name string, mod time.Time) {
	fh, err := s.cfg.Blobs.Open(sha)
	if err != nil {
		s.writeFail(w, r, fmt.Errorf("open blob %s: %w", sha, err))
		return
	}
	defer fh.Close()
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("ETag", `"`+sha+`"`)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, name, mod, fh)
}

// writeFail answers a plain (non-huma) handler's error the way fail does for operations.
func (s *Server) writeFail(w http.ResponseWriter, r *http.Request, err error) {
	e := fail(r.Context(), err)
	var ae *APIError
	if errors.As(e, &ae) {
		writeError(w, ae)
		return
	}
	writeError(w, apiError(http.StatusInternalServerError, errInternal))
}
