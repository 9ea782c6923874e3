package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/a-h/templ"

	"docket/store"
)

// staticFS holds the dashboard's assets: htmx and its SSE extension (vendored, see
// static/README.md) and the hand-written stylesheet. Embedded: the box may be offline.
//
//go:embed static
var staticFS embed.FS

// uiAssets maps an asset's file name to its URL, which carries a hash of its content so
// browsers may cache it for good and still see a new version at once.
type uiAssets map[string]string

func newUIAssets() uiAssets {
	out := uiAssets{}
	files, _ := fs.ReadDir(staticFS, "static")
	for _, f := range files {
		b, err := staticFS.ReadFile("static/" + f.Name())
		if err != nil {
			continue
		}
		h := sha256.Sum256(b)
		out[f.Name()] = "/static/" + f.Name() + "?v=" + hex.EncodeToString(h[:6])
	}
	return out
}

// navItem is one entry of the dashboard's top navigation; a page adds itself to
// uiNavItems and names its Key in pageData.Nav.
type navItem struct {
	Key, Label, Href string
	Min              store.Role
}

// uiNavItems is the navigation in the order it shows.
func uiNavItems() []navItem {
	return []navItem{
		{Key: "dashboard", Label: "Dashboard", Href: "/", Min: store.RoleViewer},
		{Key: "inbox", Label: "Inbox", Href: "/inbox", Min: store.RoleViewer},
		{Key: "jobs", Label: "Jobs", Href: "/jobs", Min: store.RoleViewer},
		{Key: "queues", Label: "Queues", Href: "/queues", Min: store.RoleViewer},
		{Key: "assignments", Label: "Assignments", Href: "/assignments", Min: store.RoleViewer},
		{Key: "audit", Label: "Audit log", Href: "/audit", Min: store.RoleAdmin},
		{Key: "settings", Label: "Settings", Href: "/settings", Min: store.RoleViewer},
	}
}

// registerUI mounts the dashboard on the same mux as the API. A page is a handler that
// builds its view from the store, calls s.pageData for the layout and renders a templ
// component wrapped in @layout(pd); an action (POST) calls the same engine or store
// function as the API operation it mirrors, with actor(ctx) (channel "ui"), and ends in
// s.redirect with a notice. Register both here with uiRoute and the API's minimum role.
func (s *Server) registerUI() {
	s.assets = newUIAssets()
	static, _ := fs.Sub(staticFS, "static")
	files := http.FileServerFS(static)
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("v") != "" {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		files.ServeHTTP(w, r)
	})))

	s.mux.Handle("GET /login", s.uiPublic(s.loginPage))
	s.mux.Handle("POST /login", s.uiPublic(s.login))
	s.uiRoute("POST /logout", "logout", store.RoleViewer, s.logout)
	s.uiRoute("POST /team", "switchTeam", store.RoleViewer, s.switchTeam)
	s.uiRoute("GET /events", "", store.RoleViewer, s.uiTeamEvents)

	s.uiRoute("GET /{$}", "", store.RoleViewer, s.dashboardPage)
	s.uiRoute("GET /inbox", "", store.RoleViewer, s.inboxPage)
	s.uiRoute("GET /inbox/{gate_id}", "", store.RoleViewer, s.gatePage)
	s.uiRoute("POST /inbox/{gate_id}/respond", "respondToHumanRequest", store.RoleMember, s.respondGate)
	s.uiRoute("GET /jobs", "", store.RoleViewer, s.jobsPage)
	s.uiRoute("GET /jobs/{run_id}", "", store.RoleViewer, s.jobPage)
	s.uiRoute("GET /jobs/{run_id}/panel", "", store.RoleViewer, s.jobPanel)
	s.uiRoute("GET /jobs/{run_id}/events", "", store.RoleViewer, s.jobEvents)
	s.uiRoute("POST /jobs/{run_id}/stop", "stopRun", store.RoleMember, s.stopJob)
	s.uiRoute("POST /jobs/{run_id}/messages", "postRunMessage", store.RoleMember, s.postJobMessage)
	s.uiRoute("GET /files/download/{path...}", "", store.RoleViewer, s.downloadFile)
	s.uiRoute("GET /audit", "", store.RoleAdmin, s.auditPage)
	s.uiRoute("GET /audit.csv", "", store.RoleAdmin, s.auditCSV)
	s.registerUIAdmin()
}

// uiRoute registers a dashboard page or action: the session must be valid and its role at
// least min, and state-changing methods must come from this origin. op names the action
// in the audit log (the API's operation id where one exists); pages pass "".
func (s *Server) uiRoute(pattern, op string, min store.Role, h http.HandlerFunc) {
	s.mux.Handle(pattern, s.uiPublic(s.withSession(op, min, h)))
}

// uiPublic wraps a handler every dashboard route shares, signed in or not: the
// cross-origin check on unsafe methods and the browser security headers.
func (s *Server) uiPublic(h http.HandlerFunc) http.Handler {
	return s.crossOrigin.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "+
			"connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		h(w, r)
	}))
}

// crossOriginDenied answers a state-changing request another site made a browser send.
func (s *Server) crossOriginDenied(w http.ResponseWriter, r *http.Request) {
	s.renderStatus(w, r, http.StatusForbidden, messagePage(s.bareData("Request refused"), "Request refused",
		"This form was sent from another site, so docket refused it. Open docket directly and try again."))
}

type uiCtxKey int

const keySessionToken uiCtxKey = iota

const (
	sessionCookie = "docket_session"
	flashCookie   = "docket_flash"
)

// withSession resolves the session cookie; without a valid one a page redirects to the
// sign-in page (and back afterwards). A role below min gets 403, and a refused change is
// audited as the API audits it.
func (s *Server) withSession(op string, min store.Role, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		var p store.Principal
		if err == nil && c.Value != "" {
			p, err = s.store.SessionPrincipal(r.Context(), c.Value, s.sessionLimits())
		}
		if err != nil || p.UserID == "" {
			if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, http.ErrNoCookie) {
				s.uiFail(w, r, err)
				return
			}
			s.toLogin(w, r, c != nil && c.Value != "")
			return
		}
		ip := clientIP(r)
		if info := requestInfoFrom(r.Context()); info != nil {
			info.actor = "user:" + p.UserID
		}
		ctx := context.WithValue(r.Context(), keyPrincipal, p)
		ctx = context.WithValue(ctx, keyActorMeta, actorMeta{op: op, ip: ip, channel: "ui"})
		ctx = context.WithValue(ctx, keySessionToken, c.Value)
		r = r.WithContext(ctx)
		if !p.Role.Allows(min) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				target := store.Target{Type: "operation", ID: op, Detail: map[string]any{"path": r.URL.Path, "role": p.Role}}
				if err := s.store.RecordDenied(ctx, store.ActorFor(p, "ui", op, ip), target); err != nil {
					s.log.Error("audit of denied request failed", "err", err)
				}
			}
			s.uiError(w, r, http.StatusForbidden, "Not allowed",
				"Your role ("+string(p.Role)+") cannot do this: it needs "+string(min)+" or higher. Ask a team admin to change your role.")
			return
		}
		h(w, r)
	}
}

// toLogin sends a visitor without a valid session to the sign-in page. Event streams and
// htmx requests cannot follow a redirect into a page, so they are told differently.
func (s *Server) toLogin(w http.ResponseWriter, r *http.Request, expired bool) {
	if expired {
		s.clearCookie(w, r, sessionCookie)
	}
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		http.Error(w, "sign in again", http.StatusUnauthorized)
		return
	}
	to := "/login"
	if r.Method == http.MethodGet && r.URL.Path != "/" {
		to += "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	if expired {
		s.setFlash(w, r, "info", "Your session ended. Sign in again to continue.")
	}
	if r.Header.Get("HX-Request") == "true" {
		w.Header().Set("HX-Redirect", to)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (s *Server) sessionLimits() store.SessionLimits {
	return store.SessionLimits{Idle: s.cfg.SessionIdle, Max: s.cfg.SessionMax}
}

// flash is a one-time notice shown on the next page: the outcome of an action.
type flash struct {
	Kind string // ok, error or info
	Text string
}

func (s *Server) setFlash(w http.ResponseWriter, r *http.Request, kind, text string) {
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: url.QueryEscape(kind + ":" + text), Path: "/", MaxAge: 60,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
}

// takeFlash reads and clears the pending notice.
func (s *Server) takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	s.clearCookie(w, r, flashCookie)
	v, err := url.QueryUnescape(c.Value)
	if err != nil {
		return nil
	}
	kind, text, ok := strings.Cut(v, ":")
	if !ok || text == "" {
		return nil
	}
	return &flash{Kind: kind, Text: text}
}

func (s *Server) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
}

// redirect ends an action: back to a page, with a notice saying what happened.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, to, kind, text string) {
	if text != "" {
		s.setFlash(w, r, kind, text)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// localPath accepts a same-site path to return to and falls back to def for anything
// else, so a crafted link cannot send a person to another site after signing in. Control
// characters are refused too: browsers drop tabs and newlines from a Location, so
// "/\t/evil.example" would reach them as "//evil.example".
func localPath(p, def string) string {
	if p == "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsRune(p, '\\') ||
		strings.ContainsFunc(p, unicode.IsControl) {
		return def
	}
	return p
}

// pageData is what every signed-in page's layout shows.
type pageData struct {
	Title     string
	Nav       string
	User      store.Principal
	TeamName  string
	Teams     []store.Membership
	Flash     *flash
	Assets    uiAssets
	Path      string
	OpenGates int
	// Stream is the page's one live-update (SSE) URL, if it has one.
	Stream  string
	Version string
	navs    []navItem
}

// NavItems are the entries this user's role may see.
func (pd pageData) NavItems() []navItem {
	var out []navItem
	for _, n := range pd.navs {
		if pd.User.Role.Allows(n.Min) {
			out = append(out, n)
		}
	}
	return out
}

// Can reports whether the user's role allows min (e.g. to show an approve button).
func (pd pageData) Can(min store.Role) bool { return pd.User.Role.Allows(min) }

// pageData gathers the layout's data for a signed-in request; it takes the pending flash.
func (s *Server) pageData(w http.ResponseWriter, r *http.Request, title, nav string) (pageData, error) {
	p := principal(r.Context())
	pd := pageData{Title: title, Nav: nav, User: p, Assets: s.assets, Path: r.URL.RequestURI(), Version: s.cfg.Version, navs: uiNavItems()}
	teams, err := s.store.UserTeams(r.Context(), p.UserID)
	if err != nil {
		return pd, err
	}
	pd.Teams = teams
	for _, t := range teams {
		if t.Team.ID == p.TeamID {
			pd.TeamName = t.Team.Name
		}
	}
	_, pd.OpenGates, err = s.store.ListGates(r.Context(), p.TeamID, store.GateFilter{Status: "open", Limit: 0})
	if err != nil {
		return pd, err
	}
	pd.Flash = s.takeFlash(w, r)
	return pd, nil
}

// bareData is the layout data of pages shown without a session (sign-in, errors).
func (s *Server) bareData(title string) pageData {
	return pageData{Title: title, Assets: s.assets, Version: s.cfg.Version}
}

// render writes a component as a complete response: it is rendered to memory first, so a
// failure mid-page becomes an error page rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, c templ.Component) {
	s.renderStatus(w, r, http.StatusOK, c)
}

func (s *Server) renderStatus(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	var buf bytes.Buffer
	if err := c.Render(r.Context(), &buf); err != nil {
		if info := requestInfoFrom(r.Context()); info != nil {
			info.cause = err
		}
		http.Error(w, "internal error: the server log has the details", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// uiError shows an error page with the layout (when signed in) and status.
func (s *Server) uiError(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	pd := s.bareData(title)
	if principal(r.Context()).UserID != "" {
		if full, err := s.pageData(w, r, title, ""); err == nil {
			pd = full
		}
	}
	s.renderStatus(w, r, status, messagePage(pd, title, msg))
}

// uiFail turns a store error into the page a person can act on; anything unexpected is
// logged and shown as an opaque 500.
func (s *Server) uiFail(w http.ResponseWriter, r *http.Request, err error) {
	var se *store.Error
	if errors.As(err, &se) {
		switch {
		case errors.Is(se.Kind, store.ErrNotFound):
			s.uiError(w, r, http.StatusNotFound, "Not found", capitalize(se.Msg)+".")
			return
		case errors.Is(se.Kind, store.ErrConflict):
			s.uiError(w, r, http.StatusConflict, "Already changed", capitalize(se.Msg)+".")
			return
		case errors.Is(se.Kind, store.ErrInvalid):
			s.uiError(w, r, http.StatusBadRequest, "Not accepted", capitalize(se.Msg)+".")
			return
		case errors.Is(se.Kind, store.ErrForbidden):
			s.uiError(w, r, http.StatusForbidden, "Not allowed", capitalize(se.Msg)+".")
			return
		}
	}
	if info := requestInfoFrom(r.Context()); info != nil {
		info.cause = err
	}
	s.uiError(w, r, http.StatusInternalServerError, "Something went wrong", "docket could not show this page. The server log has the details.")
}

// actionError is the sentence a failed action shows in its notice.
func actionError(err error) (string, bool) {
	var se *store.Error
	if errors.As(err, &se) {
		return capitalize(se.Msg) + ".", true
	}
	return "", false
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// pagination is a list's position, for the pager component.
type pagination struct {
	Total, Limit, Offset int
	// base is the list's URL with its other query parameters; pages add page=N.
	base url.URL
}

// paginate reads ?page= (1-based) for a list of limit items per page.
func paginate(r *http.Request, limit int) pagination {
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	return pagination{Limit: limit, Offset: (page - 1) * limit, base: *r.URL}
}

func (p pagination) Page() int  { return p.Offset/p.Limit + 1 }
func (p pagination) Pages() int { return max(1, (p.Total+p.Limit-1)/p.Limit) }
func (p pagination) First() int { return min(p.Offset+1, p.Total) }
func (p pagination) Last() int  { return min(p.Offset+p.Limit, p.Total) }

// URL links to page n of the same list.
func (p pagination) URL(n int) string {
	u := p.base
	q := u.Query()
	if n <= 1 {
		q.Del("page")
	} else {
		q.Set("page", strconv.Itoa(n))
	}
	u.RawQuery = q.Encode()
	return u.RequestURI()
}

// ago says how long before now t was, the way a person reads a list.
func ago(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < 0:
		return "in " + roughly(-d)
	case d < 45*time.Second:
		return "just now"
	default:
		return roughly(d) + " ago"
	}
}

func roughly(d time.Duration) string {
	switch {
	case d < 90*time.Second:
		return "1 min"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes()+0.5)) + " min"
	case d < 36*time.Hour:
		h := int(d.Hours() + 0.5)
		if h == 1 {
			return "1 hour"
		}
		return strconv.Itoa(h) + " hours"
	default:
		return strconv.Itoa(int(d.Hours()/24+0.5)) + " days"
	}
}

// stamp is the exact time, for a tooltip next to ago.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// initial is the letter in a user's avatar.
func initial(p store.Principal) string {
	n := p.Name
	if n == "" {
		n = p.Email
	}
	if n == "" {
		return "?"
	}
	return strings.ToUpper(n[:1])
}

// statusLabel names a Job's or a Gate's status the way the dashboard speaks.
func statusLabel(status string) string {
	switch status {
	case store.RunPending:
		return "Queued"
	case store.RunRunning:
		return "Running"
	case store.RunWaiting:
		return "Waiting for you"
	case store.RunCompleted:
		return "Completed"
	case store.RunFailed:
		return "Failed"
	case store.RunStopped:
		return "Stopped"
	case "open":
		return "Open"
	case "approved":
		return "Approved"
	case "denied":
		return "Denied"
	case "answered":
		return "Answered"
	case "expired":
		return "Expired"
	case "superseded":
		return "Superseded"
	}
	return capitalize(status)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func orPlaceholder(s, placeholder string) string {
	if s == "" {
		return placeholder
	}
	return s
}

// jobTitle names a Job in lists: its title, or its Assignment and number.
func jobTitle(r store.Run) string {
	if r.Title != "" {
		return r.Title
	}
	return r.AgentName + " #" + strconv.Itoa(r.RunNumber)
}

func startedAt(r store.Run) time.Time {
	if r.StartedAt != nil {
		return *r.StartedAt
	}
	return r.CreatedAt
}

// gateKindLabel says why a gate opened.
func gateKindLabel(g store.Gate) string {
	switch g.Kind {
	case store.GatePolicy:
		return "required by the Setup"
	case store.GateRecovery:
		return "outcome unknown after a restart"
	}
	return "asked by the Assignment"
}
