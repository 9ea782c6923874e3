package web

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"docket/store"
)

// loginForm is what the sign-in page shows again after a failed attempt.
type loginForm struct {
	Email string
	Next  string
	Error string
}

// loginPage shows the sign-in form, or skips it for a visitor already signed in.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"), "/")
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		if _, err := s.store.SessionPrincipal(r.Context(), c.Value, s.sessionLimits()); err == nil {
			http.Redirect(w, r, next, http.StatusSeeOther)
			return
		}
	}
	pd := s.bareData("Sign in")
	pd.Flash = s.takeFlash(w, r)
	s.render(w, r, loginPage(pd, loginForm{Next: next}))
}

// login checks a password and starts a session. Failed attempts are limited per address
// and email, so a password cannot be guessed at speed; they are audited when the email
// belongs to a user.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.uiError(w, r, http.StatusBadRequest, "Not accepted", "The sign-in form could not be read: send it again.")
		return
	}
	form := loginForm{Email: strings.TrimSpace(r.PostForm.Get("email")), Next: localPath(r.PostForm.Get("next"), "/")}
	password := r.PostForm.Get("password")
	ip := clientIP(r)
	limitKey := ip + "|" + strings.ToLower(form.Email)
	pd := s.bareData("Sign in")
	if ok, retry := s.loginLimiter.peek(limitKey); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		form.Error = "Too many failed sign-ins for " + form.Email + " from your address. Wait " + strconv.Itoa(retry) +
			" seconds, then try again."
		s.renderStatus(w, r, http.StatusTooManyRequests, loginPage(pd, form))
		return
	}
	if form.Email == "" || password == "" {
		form.Error = "Enter your email and password."
		s.renderStatus(w, r, http.StatusBadRequest, loginPage(pd, form))
		return
	}
	l, err := s.store.LoginByEmail(r.Context(), form.Email)
	known := err == nil || errors.Is(err, store.ErrNoPassword)
	if err != nil && !known && !errors.Is(err, store.ErrNotFound) {
		s.uiFail(w, r, err)
		return
	}
	if err != nil || bcrypt.CompareHashAndPassword([]byte(l.PasswordHash), []byte(password)) != nil || len(l.Teams) == 0 {
		s.loginLimiter.take(limitKey)
		if known && len(l.Teams) > 0 {
			a := store.Actor{TeamID: l.Teams[0].Team.ID, UserID: l.User.ID, Channel: "ui", Operation: "login", IP: ip}
			if err := s.store.RecordDenied(r.Context(), a, store.Target{Type: "user", ID: l.User.ID, Detail: map[string]any{"reason": "wrong password"}}); err != nil {
				s.log.Error("audit of failed sign-in failed", "err", err)
			}
		}
		form.Error = "Wrong email or password."
		if errors.Is(err, store.ErrNoPassword) {
			form.Error = "This account has no password yet: ask a team admin to set one."
		}
		s.renderStatus(w, r, http.StatusUnauthorized, loginPage(pd, form))
		return
	}
	a := store.Actor{TeamID: l.Teams[0].Team.ID, UserID: l.User.ID, Channel: "ui", Operation: "login", IP: ip}
	token, err := s.store.CreateSession(r.Context(), a, s.sessionLimits(), r.UserAgent())
	if err != nil {
		s.uiFail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", MaxAge: int(math.Ceil(s.cfg.SessionMax.Seconds())),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	http.Redirect(w, r, form.Next, http.StatusSeeOther)
}

// logout ends the session on the server, so its cookie is worthless even if kept.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	token, _ := r.Context().Value(keySessionToken).(string)
	if err := s.store.DeleteSession(r.Context(), actor(r.Context()), token); err != nil {
		s.uiFail(w, r, err)
		return
	}
	s.clearCookie(w, r, sessionCookie)
	s.redirect(w, r, "/login", "ok", "You are signed out.")
}

// switchTeam moves the session to another of the user's teams.
func (s *Server) switchTeam(w http.ResponseWriter, r *http.Request) {
	token, _ := r.Context().Value(keySessionToken).(string)
	team := r.PostFormValue("team_id")
	if err := s.store.SwitchSessionTeam(r.Context(), token, principal(r.Context()).UserID, team); err != nil {
		s.uiFail(w, r, err)
		return
	}
	s.redirect(w, r, "/", "", "")
}
