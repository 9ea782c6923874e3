package files

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// reservedDirs are the data dir's own folders, which an intake folder must stay out of.
var reservedDirs = []string{"blobs"}

// ResolveIntakeDir turns the folder a user gave for a queue's intake (absolute, or
// relative to the data dir) into the form the store keeps: relative to the data dir,
// slash-separated. The folder must lie inside the data dir, so the server never watches
// or moves files elsewhere on the machine.
func ResolveIntakeDir(data, dir string) (string, error) {
	if strings.ContainsRune(dir, 0) {
		return "", errors.New("contains a NUL byte")
	}
	rel := dir
	if filepath.IsAbs(dir) {
		r, err := filepath.Rel(data, filepath.Clean(dir))
		if err != nil {
			return "", fmt.Errorf("must be inside the data dir %s", data)
		}
		rel = r
	}
	rel = filepath.Clean(rel)
	if rel == "." {
		return "", fmt.Errorf("must be a folder inside the data dir %s, not the data dir itself", data)
	}
	if !filepath.IsLocal(rel) {
		return "", fmt.Errorf("must be inside the data dir %s", data)
	}
	rel = filepath.ToSlash(rel)
	for _, r := range reservedDirs {
		if rel == r || strings.HasPrefix(rel, r+"/") {
			return "", fmt.Errorf("%s/ holds docket's own files: pick another folder", r)
		}
	}
	return rel, nil
}

// IntakeAbs is an intake folder's absolute path.
func IntakeAbs(data, rel string) string { return filepath.Join(data, filepath.FromSlash(rel)) }

// PrepareIntakeDir creates an intake folder (relative to the data dir) if needed and
// checks that, with symbolic links resolved, it is still inside the data dir.
func PrepareIntakeDir(data, rel string) error {
	abs := IntakeAbs(data, rel)
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return err
	}
	realData, err := filepath.EvalSymlinks(data)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return err
	}
	if r, err := filepath.Rel(realData, real); err != nil || !filepath.IsLocal(r) {
		return fmt.Errorf("%s resolves to %s, outside the data dir", abs, real)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a folder", abs)
	}
	return nil
}
