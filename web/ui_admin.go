package web

import (
	"net/http"
	"strconv"

	"docket/store"
)

// registerUIAdmin mounts the pages that manage work rather than watch it: queues and
// cases, Assignments and their Setups, and the team's settings. Every action names the
// API operation it performs (for the audit log) and needs the role that operation needs.
func (s *Server) registerUIAdmin() {
	s.uiRoute("GET /queues", "", store.RoleViewer, s.queuesPage)
	s.uiRoute("GET /cases", "", store.RoleViewer, s.casesPage)
	s.uiRoute("GET /cases/{case_id}", "", store.RoleViewer, s.casePage)
	s.uiRoute("POST /cases/{case_id}/delete", "deleteCase", store.RoleMember, s.deleteCasePost)
	for _, a := range bulkActions {
		s.uiRoute("POST /queues/{queue_id}/cases/"+a.verb, a.op, store.RoleMember, s.bulkCasesPost(a))
	}

	s.uiRoute("GET /assignments", "", store.RoleViewer, s.assignmentsPage)
	s.uiRoute("GET /assignments/new", "", store.RoleMember, s.newAssignmentPage)
	s.uiRoute("POST /assignments", "createAgent", store.RoleMember, s.createAssignmentPost)
	s.uiRoute("GET /assignments/{agent_id}", "", store.RoleViewer, s.assignmentPage)
	s.uiRoute("GET /assignments/{agent_id}/setups/new", "", store.RoleMember, s.newSetupPage)
	s.uiRoute("POST /assignments/{agent_id}/setups", "createRevision", store.RoleMember, s.createSetupPost)
	s.uiRoute("GET /assignments/{agent_id}/setups/{build_id}", "", store.RoleViewer, s.setupPage)
	s.uiRoute("POST /assignments/{agent_id}/setups/{build_id}/promote", "promoteRevision", store.RoleMember, s.promoteSetupPost)

	s.uiRoute("GET /settings", "", store.RoleViewer, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/settings/members", http.StatusSeeOther)
	})
	s.uiRoute("GET /settings/members", "", store.RoleViewer, s.membersPage)
	s.uiRoute("POST /settings/members", "createUser", store.RoleAdmin, s.inviteMemberPost)
	s.uiRoute("GET /settings/api-keys", "", store.RoleAdmin, s.apiKeysPage)
	s.uiRoute("POST /settings/api-keys", "createApiKey", store.RoleAdmin, s.createAPIKeyPost)
	s.uiRoute("POST /settings/api-keys/{key_id}/revoke", "revokeApiKey", store.RoleAdmin, s.revokeAPIKeyPost)
	s.uiRoute("GET /settings/webhooks", "", store.RoleMember, s.webhooksPage)
	s.uiRoute("POST /settings/webhooks", "createWebhook", store.RoleAdmin, s.createWebhookPost)
	s.uiRoute("POST /settings/webhooks/{webhook_id}/delete", "deleteWebhook", store.RoleAdmin, s.deleteWebhookPost)
	s.uiRoute("POST /settings/webhooks/{webhook_id}/test", "testWebhook", store.RoleAdmin, s.testWebhookPost)
	s.uiRoute("GET /settings/deliveries", "", store.RoleMember, s.deliveriesPage)
}

// actionFailed ends an action that the store refused: back to where the person was,
// with the store's sentence; anything unexpected is the opaque error page.
func (s *Server) actionFailed(w http.ResponseWriter, r *http.Request, back string, err error) {
	if msg, ok := actionError(err); ok {
		s.redirect(w, r, back, "error", msg)
		return
	}
	s.uiFail(w, r, err)
}

// plural writes "1 case" or "3 cases".
func plural(n int, one, many string) string {
	return strconv.Itoa(n) + " " + pluralWord(n, one, many)
}

func pluralWord(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
