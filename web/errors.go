package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/danielgtaylor/huma/v2"

	"docket/store"
)

// APIError is every error body the API sends: {"error": code, "message": sentence}.
type APIError struct {
	status  int
	Code    string `json:"error" doc:"A stable machine-readable code, e.g. invalid_request, not_found."`
	Message string `json:"message" doc:"What went wrong and how to fix it."`
}

func (e *APIError) Error() string  { return e.Message }
func (e *APIError) GetStatus() int { return e.status }

var errorCodes = map[int]string{
	http.StatusBadRequest:            "invalid_request",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusNotFound:              "not_found",
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusConflict:              "conflict",
	http.StatusRequestEntityTooLarge: "payload_too_large",
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusUnprocessableEntity:   "unprocessable",
	http.StatusTooManyRequests:       "rate_limited",
	http.StatusInternalServerError:   "internal_error",
}

func apiError(status int, format string, args ...any) *APIError {
	code := errorCodes[status]
	if code == "" {
		code = strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_"))
	}
	return &APIError{status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// errInternal is the only thing a client learns about a server fault; the log has the rest.
const errInternal = "internal error: the server log has the details"

var errorModelOnce sync.Once

// installErrorModel points huma's error constructor at APIError. huma keeps it in a
// package variable, so it is set once for the process.
func installErrorModel() {
	errorModelOnce.Do(func() {
		huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
			if status >= 500 {
				return apiError(status, errInternal)
			}
			// huma reports schema violations as 422 with one detail per field; the
			// reference answers 400 naming the field.
			var parts []string
			for _, e := range errs {
				if e == nil {
					continue
				}
				var d huma.ErrorDetailer
				if errors.As(e, &d) {
					det := d.ErrorDetail()
					loc := strings.TrimPrefix(det.Location, "body.")
					if loc == "body" || loc == "" {
						parts = append(parts, det.Message)
					} else {
						parts = append(parts, loc+": "+det.Message)
					}
					continue
				}
				parts = append(parts, e.Error())
			}
			if status == http.StatusUnprocessableEntity {
				status = http.StatusBadRequest
			}
			if len(parts) > 0 {
				msg = strings.Join(parts, "; ")
			}
			if status == http.StatusRequestEntityTooLarge {
				msg = "request body too large: " + msg
			}
			return apiError(status, "%s", msg)
		}
	})
}

// fail turns a store or validation error into the API error a client can act on; any
// other error becomes an opaque 500 whose cause goes to the request's log line.
func fail(ctx context.Context, err error) error {
	var se *store.Error
	if errors.As(err, &se) {
		switch {
		case errors.Is(se.Kind, store.ErrNotFound):
			return apiError(http.StatusNotFound, "%s", se.Msg)
		case errors.Is(se.Kind, store.ErrConflict):
			return apiError(http.StatusConflict, "%s", se.Msg)
		case errors.Is(se.Kind, store.ErrInvalid):
			return apiError(http.StatusBadRequest, "%s", se.Msg)
		case errors.Is(se.Kind, store.ErrForbidden):
			return apiError(http.StatusForbidden, "%s", se.Msg)
		}
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	if info := requestInfoFrom(ctx); info != nil {
		info.cause = err
	}
	return &internalError{cause: err}
}

// internalError keeps the cause for the log while the client sees errInternal.
type internalError struct{ cause error }

func (e *internalError) Error() string  { return e.cause.Error() }
func (e *internalError) Unwrap() error  { return e.cause }
func (e *internalError) GetStatus() int { return http.StatusInternalServerError }
func (e *internalError) MarshalJSON() ([]byte, error) {
	return []byte(`{"error":"internal_error","message":"` + errInternal + `"}`), nil
}

func notFoundErr(format string, args ...any) error {
	return apiError(http.StatusNotFound, format, args...)
}

func badRequest(format string, args ...any) error {
	return apiError(http.StatusBadRequest, format, args...)
}
