package web

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"docket/store"
)

// settingsPerPage is how many rows a settings list shows per page.
const settingsPerPage = 50

// minPassword is the shortest password an admin may set for a new member, as `docket
// user add` requires.
const minPassword = 8

// settingsTab is one section of the settings pages.
type settingsTab struct {
	Key, Label, Href string
	Min              store.Role
}

var settingsTabs = []settingsTab{
	{Key: "members", Label: "Members", Href: "/settings/members", Min: store.RoleViewer},
	{Key: "api-keys", Label: "API keys", Href: "/settings/api-keys", Min: store.RoleAdmin},
	{Key: "webhooks", Label: "Webhooks", Href: "/settings/webhooks", Min: store.RoleMember},
	{Key: "deliveries", Label: "Delivery log", Href: "/settings/deliveries", Min: store.RoleMember},
}

// roles are the roles in the order the invite form offers them, lowest first.
var roles = []store.Role{store.RoleViewer, store.RoleMember, store.RoleAdmin, store.RoleOwner}

// grantable are the roles p may give: none above their own.
func grantable(p store.Principal) []store.Role {
	var out []store.Role
	for _, r := range roles {
		if p.Role.Allows(r) {
			out = append(out, r)
		}
	}
	return out
}

// memberForm is the invite form as submitted, with what was wrong with it.
type memberForm struct {
	Email, Name string
	Role        store.Role
	Errors      map[string]string
}

func (f *memberForm) fail(field, msg string) {
	if f.Errors == nil {
		f.Errors = map[string]string{}
	}
	f.Errors[field] = msg
}

type membersView struct {
	Members []store.Member
	Pg      pagination
	Form    memberForm
	Roles   []store.Role
}

func (s *Server) membersPage(w http.ResponseWriter, r *http.Request) {
	s.renderMembers(w, r, http.StatusOK, memberForm{Role: store.RoleMember})
}

func (s *Server) renderMembers(w http.ResponseWriter, r *http.Request, status int, f memberForm) {
	ctx := r.Context()
	p := principal(ctx)
	pd, err := s.pageData(w, r, "Members · Settings", "settings")
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	v := membersView{Pg: paginate(r, settingsPerPage), Form: f, Roles: grantable(p)}
	if v.Members, v.Pg.Total, err = s.store.ListMembers(ctx, p.TeamID, "", v.Pg.Limit, v.Pg.Offset); err != nil {
		s.uiFail(w, r, err)
		return
	}
	s.renderStatus(w, r, status, membersPage(pd, v))
}

// inviteMemberPost adds a person to the team with a password the admin sets and hands
// over: docket sends no email. Nobody may grant a role above their own.
func (s *Server) inviteMemberPost(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principal(ctx)
	if err := r.ParseForm(); err != nil {
		s.uiError(w, r, http.StatusBadRequest, "Not accepted", "The form could not be read: send it again.")
		return
	}
	f := memberForm{Email: strings.TrimSpace(r.PostFormValue("email")), Name: strings.TrimSpace(r.PostFormValue("name"))}
	password := r.PostFormValue("password")
	role, err := store.ParseRole(r.PostFormValue("role"))
	f.Role = role
	switch {
	case err != nil:
		f.fail("role", "Choose a role: viewer, member, admin or owner.")
	case !p.Role.Allows(role):
		f.fail("role", "You are "+string(p.Role)+": you cannot make someone "+string(role)+".")
	}
	if !strings.Contains(f.Email, "@") {
		f.fail("email", "Enter the email address they will sign in with.")
	}
	if len(password) < minPassword {
		f.fail("password", "The password needs at least 8 characters.")
	}
	if len(f.Errors) > 0 {
		s.renderMembers(w, r, http.StatusBadRequest, f)
		return
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	u, err := s.store.CreateUser(ctx, actor(ctx), p.TeamID, f.Email, f.Name, string(hash), role)
	if err != nil {
		msg, known := actionError(err)
		if !known {
			s.uiFail(w, r, err)
			return
		}
		f.fail("email", msg)
		s.renderMembers(w, r, http.StatusBadRequest, f)
		return
	}
	s.redirect(w, r, "/settings/members", "ok", "Added "+u.Email+" as "+string(role)+". Give them the password you set; they can sign in now.")
}

type apiKeysView struct {
	Keys    []store.APIKey
	Pg      pagination
	Members []store.Member
	// NewKey is the secret of the key just created: shown on this response only.
	NewKey  string
	NewName string
	Problem string
}

func (s *Server) apiKeysPage(w http.ResponseWriter, r *http.Request) {
	s.renderAPIKeys(w, r, http.StatusOK, apiKeysView{})
}

func (s *Server) renderAPIKeys(w http.ResponseWriter, r *http.Request, status int, v apiKeysView) {
	ctx := r.Context()
	p := principal(ctx)
	pd, err := s.pageData(w, r, "API keys · Settings", "settings")
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	v.Pg = paginate(r, settingsPerPage)
	if v.Keys, v.Pg.Total, err = s.store.ListAPIKeys(ctx, p.TeamID, v.Pg.Limit, v.Pg.Offset); err != nil {
		s.uiFail(w, r, err)
		return
	}
	members, _, err := s.store.ListMembers(ctx, p.TeamID, "", 200, 0)
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	for _, m := range members {
		if p.Role.Allows(m.Role) {
			v.Members = append(v.Members, m)
		}
	}
	s.renderStatus(w, r, status, apiKeysPage(pd, v))
}

// createAPIKeyPost issues a key (createApiKey) and shows its secret in this response
// only: it is stored as a hash and never shown again.
func (s *Server) createAPIKeyPost(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principal(ctx)
	name := strings.TrimSpace(r.PostFormValue("name"))
	user, bad := s.keyUser(ctx, p, r.PostFormValue("user_id"))
	if bad != nil {
		s.renderAPIKeys(w, r, bad.GetStatus(), apiKeysView{Problem: capitalize(bad.Message) + "."})
		return
	}
	k, raw, err := s.store.CreateAPIKey(ctx, actor(ctx), p.TeamID, user, name)
	if err != nil {
		msg, known := actionError(err)
		if !known {
			s.uiFail(w, r, err)
			return
		}
		s.renderAPIKeys(w, r, http.StatusBadRequest, apiKeysView{Problem: msg})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	s.renderAPIKeys(w, r, http.StatusCreated, apiKeysView{NewKey: raw, NewName: k.Name})
}

func (s *Server) revokeAPIKeyPost(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := s.store.RevokeAPIKey(ctx, actor(ctx), principal(ctx).TeamID, r.PathValue("key_id")); err != nil {
		s.actionFailed(w, r, "/settings/api-keys", err)
		return
	}
	s.redirect(w, r, "/settings/api-keys", "ok", "Key revoked: requests with it are refused from now on.")
}

type webhooksView struct {
	Hooks  []store.Webhook
	Pg     pagination
	Events []string
	URL    string
	Desc   string
	Picked []string
	// Problem is why the new subscription was refused.
	Problem string
	CanEdit bool
}

func (s *Server) webhooksPage(w http.ResponseWriter, r *http.Request) {
	s.renderWebhooks(w, r, http.StatusOK, webhooksView{})
}

func (s *Server) renderWebhooks(w http.ResponseWriter, r *http.Request, status int, v webhooksView) {
	ctx := r.Context()
	p := principal(ctx)
	pd, err := s.pageData(w, r, "Webhooks · Settings", "settings")
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	v.Pg, v.Events, v.CanEdit = paginate(r, settingsPerPage), store.WebhookEventNames(), p.Role.Allows(store.RoleAdmin)
	if v.Hooks, v.Pg.Total, err = s.store.ListWebhooks(ctx, p.TeamID, v.Pg.Limit, v.Pg.Offset); err != nil {
		s.uiFail(w, r, err)
		return
	}
	s.renderStatus(w, r, status, webhooksPage(pd, v))
}

// createWebhookPost subscribes a URL (createWebhook), with the URL rules the API applies.
func (s *Server) createWebhookPost(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		s.uiError(w, r, http.StatusBadRequest, "Not accepted", "The form could not be read: send it again.")
		return
	}
	v := webhooksView{URL: strings.TrimSpace(r.PostFormValue("url")), Desc: strings.TrimSpace(r.PostFormValue("description")), Picked: r.PostForm["events"]}
	for _, e := range v.Picked {
		if !slices.Contains(store.WebhookEventNames(), e) {
			v.Problem = "Unknown event " + e + "."
		}
	}
	if v.Problem == "" {
		if err := checkWebhookURL("URL", v.URL); err != nil {
			var ae *APIError
			if errors.As(err, &ae) {
				v.Problem = capitalize(ae.Message) + "."
			}
		}
	}
	if v.Problem == "" {
		_, err := s.store.CreateWebhook(ctx, actor(ctx), store.NewWebhook{URL: v.URL, Events: v.Picked, Enabled: true, Description: v.Desc})
		if err == nil {
			s.redirect(w, r, "/settings/webhooks", "ok", "Subscribed "+v.URL+". Send it a test to see a signed delivery in the log.")
			return
		}
		msg, known := actionError(err)
		if !known {
			s.uiFail(w, r, err)
			return
		}
		v.Problem = msg
	}
	s.renderWebhooks(w, r, http.StatusBadRequest, v)
}

func (s *Server) deleteWebhookPost(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := s.store.DeleteWebhook(ctx, actor(ctx), r.PathValue("webhook_id")); err != nil {
		s.actionFailed(w, r, "/settings/webhooks", err)
		return
	}
	s.redirect(w, r, "/settings/webhooks", "ok", "Webhook deleted. Deliveries not yet made are given up; the log keeps the past ones.")
}

func (s *Server) testWebhookPost(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("webhook_id")
	if _, err := s.store.EnqueueWebhookPing(ctx, actor(ctx), id); err != nil {
		s.actionFailed(w, r, "/settings/webhooks", err)
		return
	}
	if s.hooks != nil {
		s.hooks.Wake()
	}
	s.redirect(w, r, "/settings/deliveries?webhook="+id, "ok", "Test ping queued: it shows below as soon as it is sent.")
}

// deliveryStatuses are the delivery log's status filter.
var deliveryStatuses = []string{"", store.DeliveryPending, store.DeliveryDelivering, store.DeliveryDelivered, store.DeliveryFailed}

type deliveriesView struct {
	Deliveries []store.WebhookDelivery
	Pg         pagination
	Status     string
	Webhook    string
}

func (s *Server) deliveriesPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	pd, err := s.pageData(w, r, "Delivery log · Settings", "settings")
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	q := r.URL.Query()
	v := deliveriesView{Pg: paginate(r, settingsPerPage), Webhook: q.Get("webhook")}
	if slices.Contains(deliveryStatuses, q.Get("status")) {
		v.Status = q.Get("status")
	}
	if v.Deliveries, v.Pg.Total, err = s.store.ListWebhookDeliveries(ctx, principal(ctx).TeamID, store.DeliveryFilter{Status: v.Status,
		WebhookID: v.Webhook, Limit: v.Pg.Limit, Offset: v.Pg.Offset}); err != nil {
		s.uiFail(w, r, err)
		return
	}
	s.render(w, r, deliveriesPage(pd, v))
}

func deliveriesURL(status, webhook string) string {
	u := "/settings/deliveries?status=" + status
	if webhook != "" {
		u += "&webhook=" + webhook
	}
	return u
}

func deliveryStatusLabel(s string) string {
	if s == "" {
		return "All"
	}
	return capitalize(s)
}

func webhookEventsText(events []string) string {
	if len(events) == 0 {
		return "all events"
	}
	return strings.Join(events, ", ")
}
