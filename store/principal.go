package store

import "fmt"

// Role is a member's standing in a team; each role can do everything the ones below it can.
type Role string

const (
	RoleViewer Role = "viewer"
	RoleMember Role = "member"
	RoleAdmin  Role = "admin"
	RoleOwner  Role = "owner"
)

var roleRank = map[Role]int{RoleViewer: 1, RoleMember: 2, RoleAdmin: 3, RoleOwner: 4}

// ParseRole accepts the four role names.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if roleRank[r] == 0 {
		return "", fmt.Errorf("role %q: want owner, admin, member or viewer", s)
	}
	return r, nil
}

// Allows reports whether r is at least min.
func (r Role) Allows(min Role) bool { return roleRank[r] >= roleRank[min] }

// Principal is who a request acts as: a user in one team, through an API key or a session.
type Principal struct {
	UserID     string
	Email      string
	Name       string
	TeamID     string
	Role       Role
	APIKeyID   string
	APIKeyName string
}

// Actor is what the audit log records about the author of a change.
type Actor struct {
	TeamID     string
	UserID     string
	APIKeyID   string
	APIKeyName string
	// Channel is how the change arrived: api, cli, ui, mcp or system.
	Channel string
	// Operation is the API operation id (or CLI verb) that made the change.
	Operation string
	IP        string
}

// Target names what a change touched, for the audit log.
type Target struct {
	Type   string
	ID     string
	Detail map[string]any
}

// ActorFor builds the audit actor for a principal's request.
func ActorFor(p Principal, channel, operation, ip string) Actor {
	return Actor{TeamID: p.TeamID, UserID: p.UserID, APIKeyID: p.APIKeyID, APIKeyName: p.APIKeyName,
		Channel: channel, Operation: operation, IP: ip}
}
