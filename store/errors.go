package store

import (
	"errors"
	"fmt"
)

// Kinds of failure a caller can act on; web maps them to HTTP statuses.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
	// ErrForbidden is a rule about who may act, beyond roles (e.g. distinct_approver).
	ErrForbidden = errors.New("forbidden")
	// ErrLeaseLost tells an executor the run is no longer its own: it was stopped, or
	// its lease expired and another executor took it over. The executor must drop it.
	ErrLeaseLost = errors.New("run lease lost")
)

// Error carries a sentence meant for the user alongside its kind.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

func notFound(format string, args ...any) error {
	return &Error{Kind: ErrNotFound, Msg: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return &Error{Kind: ErrConflict, Msg: fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) error {
	return &Error{Kind: ErrInvalid, Msg: fmt.Sprintf(format, args...)}
}

func forbidden(format string, args ...any) error {
	return &Error{Kind: ErrForbidden, Msg: fmt.Sprintf(format, args...)}
}
