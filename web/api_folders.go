package web

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"docket/store"
)

// FolderJSON is a folder. Exported because listAgentFolders embeds it (see AgentJSON).
type FolderJSON struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	TeamID         string    `json:"team_id"`
	ParentFolderID *string   `json:"parent_folder_id" nullable:"true"`
	CreatedAt      Timestamp `json:"created_at"`
	UpdatedAt      Timestamp `json:"updated_at"`
}

func folderOut(f store.Folder) FolderJSON {
	return FolderJSON{ID: f.ID, Name: f.Name, TeamID: f.TeamID, ParentFolderID: f.ParentFolderID, CreatedAt: ts(f.CreatedAt), UpdatedAt: ts(f.UpdatedAt)}
}

type folderListItemJSON struct {
	FolderJSON
	AgentCount     int `json:"agent_count"`
	SubfolderCount int `json:"subfolder_count"`
}

type foldersOut struct {
	Folders []folderListItemJSON `json:"folders"`
}

type folderOutBody struct {
	Folder FolderJSON `json:"folder"`
}

// FolderPath names a folder; a malformed id is a 400 naming folder_id (see AgentPath).
type FolderPath struct {
	FolderID string `path:"folder_id" format:"uuid" doc:"Folder id."`
}

func (s *Server) registerFolders() {
	tags := []string{"Assignment folders"}
	huma.Register(s.api, s.op(huma.Operation{OperationID: "listAgentFolders", Method: http.MethodGet, Path: "/v2/teams/{teamId}/agent-folders",
		Summary: "List the team's Assignment folders", Tags: tags}, store.RoleViewer),
		func(ctx context.Context, in *TeamPath) (*body[foldersOut], error) {
			fs, err := s.store.ListFolders(ctx, in.TeamID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			out := &body[foldersOut]{Body: foldersOut{Folders: []folderListItemJSON{}}}
			for _, f := range fs {
				out.Body.Folders = append(out.Body.Folders, folderListItemJSON{FolderJSON: folderOut(f), AgentCount: f.AgentCount, SubfolderCount: f.SubfolderCount})
			}
			return out, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "createAgentFolder", Method: http.MethodPost, Path: "/v2/teams/{teamId}/agent-folders",
		Summary: "Create a folder", DefaultStatus: http.StatusCreated, Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *struct {
			TeamPath
			Body struct {
				Name           string  `json:"name" minLength:"1" maxLength:"100"`
				ParentFolderID *string `json:"parent_folder_id,omitempty" nullable:"true"`
			}
		}) (*body[folderOutBody], error) {
			f, err := s.store.CreateFolder(ctx, actor(ctx), in.Body.Name, in.Body.ParentFolderID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[folderOutBody]{Body: folderOutBody{Folder: folderOut(f)}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "updateAgentFolder", Method: http.MethodPatch, Path: "/v2/agent-folders/{folder_id}",
		Summary: "Rename or move a folder", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *struct {
			FolderPath
			Body struct {
				Name           *string          `json:"name,omitempty" minLength:"1" maxLength:"100"`
				ParentFolderID nullable[string] `json:"parent_folder_id,omitempty" doc:"null moves the folder to the top level."`
			}
		}) (*body[folderOutBody], error) {
			p := store.FolderPatch{Name: in.Body.Name, SetParent: in.Body.ParentFolderID.Sent, Parent: in.Body.ParentFolderID.Value}
			f, err := s.store.UpdateFolder(ctx, actor(ctx), in.FolderID, p)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[folderOutBody]{Body: folderOutBody{Folder: folderOut(f)}}, nil
		})

	huma.Register(s.api, s.op(huma.Operation{OperationID: "deleteAgentFolder", Method: http.MethodDelete, Path: "/v2/agent-folders/{folder_id}",
		Summary: "Delete a folder", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *struct {
			FolderPath
			Force string `query:"force" enum:"true,false" doc:"true: move the folder's assignments and subfolders to its parent, then delete it."`
		}) (*body[successOut], error) {
			if err := s.store.DeleteFolder(ctx, actor(ctx), in.FolderID, in.Force == "true"); err != nil {
				return nil, fail(ctx, err)
			}
			return &body[successOut]{Body: successOut{Success: true}}, nil
		})

	type moveOut struct {
		Success    bool `json:"success"`
		MovedCount int  `json:"moved_count"`
	}
	huma.Register(s.api, s.op(huma.Operation{OperationID: "moveAgentsToFolder", Method: http.MethodPost, Path: "/v2/teams/{teamId}/agent-folders/move-agents",
		Summary: "Move Assignments into a folder (null: the top level)", Tags: tags}, store.RoleMember),
		func(ctx context.Context, in *struct {
			TeamPath
			Body struct {
				AgentIDs []string `json:"agent_ids" minItems:"1" maxItems:"500"`
				FolderID *string  `json:"folder_id" nullable:"true"`
			}
		}) (*body[moveOut], error) {
			n, err := s.store.MoveAgentsToFolder(ctx, actor(ctx), in.Body.AgentIDs, in.Body.FolderID)
			if err != nil {
				return nil, fail(ctx, err)
			}
			return &body[moveOut]{Body: moveOut{Success: true, MovedCount: n}}, nil
		})
}
