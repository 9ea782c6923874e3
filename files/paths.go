package files

import (
	"fmt"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// PathError says why a path given in Field was refused.
type PathError struct {
	Field  string
	Value  string
	Reason string
}

func (e *PathError) Error() string {
	return fmt.Sprintf("%s %q is not a valid file path: %s", e.Field, e.Value, e.Reason)
}

// MaxPathLen bounds a whole path; a segment is bounded like a file name on disk.
const (
	MaxPathLen    = 1024
	maxSegmentLen = 255
)

// CleanPath checks a team file path given in field: relative, slash-separated, already
// clean (no empty, "." or ".." segments, no trailing slash), valid UTF-8 without NUL or
// control characters. Team paths never touch the disk by name (blobs are stored by hash),
// so refusing anything unclean is what keeps one path from aliasing another.
func CleanPath(field, p string) (string, error) {
	bad := func(reason string) (string, error) { return "", &PathError{Field: field, Value: p, Reason: reason} }
	switch {
	case p == "":
		return bad("it is empty")
	case len(p) > MaxPathLen:
		return bad(fmt.Sprintf("it is longer than %d bytes", MaxPathLen))
	case !utf8.ValidString(p):
		return bad("it is not valid UTF-8")
	case strings.ContainsRune(p, 0):
		return bad("it contains a NUL byte")
	case strings.ContainsRune(p, '\\'):
		return bad(`use "/" to separate folders, not "\"`)
	case strings.HasPrefix(p, "/") || len(p) >= 2 && p[1] == ':':
		return bad("it is absolute; give a path relative to the team's files, like invoices/a.pdf")
	}
	if strings.IndexFunc(p, unicode.IsControl) >= 0 {
		return bad("it contains a control character")
	}
	for _, seg := range strings.Split(p, "/") {
		switch {
		case seg == "":
			return bad("it has an empty segment (a doubled or trailing \"/\")")
		case seg == "..":
			return bad(`it leaves its folder with ".."`)
		case seg == ".":
			return bad(`it has a "." segment`)
		case len(seg) > maxSegmentLen:
			return bad(fmt.Sprintf("a segment is longer than %d bytes", maxSegmentLen))
		}
	}
	if path.Clean(p) != p {
		return bad("it is not in clean form")
	}
	return p, nil
}

// CleanPrefix checks a listing prefix: "" (everything), or a clean path with an optional
// trailing "/" (a folder).
func CleanPrefix(field, p string) (string, error) {
	if p == "" {
		return "", nil
	}
	if _, err := CleanPath(field, strings.TrimSuffix(p, "/")); err != nil {
		e := err.(*PathError)
		e.Value = p
		return "", e
	}
	return p, nil
}

// CleanSandboxPath checks a path inside a sandbox. Sandboxes show absolute paths
// (/workspace/data.csv) as the reference does; a relative one is taken as under
// /workspace. The result is absolute and clean.
func CleanSandboxPath(field, p string) (string, error) {
	rel := strings.TrimPrefix(p, "/")
	if p == "" || rel == "" {
		return "", &PathError{Field: field, Value: p, Reason: "it is empty"}
	}
	if !strings.HasPrefix(p, "/") {
		rel = "workspace/" + rel
	}
	if _, err := CleanPath(field, rel); err != nil {
		e := err.(*PathError)
		e.Value = p
		return "", e
	}
	return "/" + rel, nil
}

// Base is a path's last segment.
func Base(p string) string { return path.Base(p) }
