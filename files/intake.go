package files

import (
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/fsnotify/fsnotify"

	"docket/store"
)

// IntakeConfig is what the drop-folder watcher needs.
type IntakeConfig struct {
	Store   *store.Store
	Blobs   *Blobs
	DataDir string
	Log     *slog.Logger
	// Wake is called after a drop made cases, so the dispatcher starts them at once.
	Wake func()
	// Debounce is how long a file's size and mtime must stay unchanged before it is
	// ingested (default 500 ms).
	Debounce time.Duration
	// MaxFileSize bounds one dropped file (default DefaultMaxFileSize); a bigger one goes to failed/.
	MaxFileSize int64
	// Workers store blobs and build cases in parallel (default 8): storing a blob waits on fsync.
	Workers int
	// Rescan is how often every folder is scanned again, as a safety net for events the
	// OS did not deliver (default 1 min).
	Rescan time.Duration
}

// Intake watches every queue's drop folder (DESIGN §4): one fsnotify watcher for all of
// them, a full scan at start-up, on overflow and every Rescan, and a pool of workers that
// turn stable files into cases.
type Intake struct {
	cfg       IntakeConfig
	reconcile chan struct{}
}

// NewIntake returns the watcher; Run starts it.
func NewIntake(cfg IntakeConfig) *Intake {
	if cfg.Debounce <= 0 {
		cfg.Debounce = 500 * time.Millisecond
	}
	if cfg.MaxFileSize <= 0 {
		cfg.MaxFileSize = DefaultMaxFileSize
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.Rescan <= 0 {
		cfg.Rescan = time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Wake == nil {
		cfg.Wake = func() {}
	}
	return &Intake{cfg: cfg, reconcile: make(chan struct{}, 1)}
}

// Reconcile makes the watcher re-read which queues have intake on, without a restart.
func (in *Intake) Reconcile() {
	select {
	case in.reconcile <- struct{}{}:
	default:
	}
}

// Ignored reports whether a name in an intake folder is never ingested: hidden files and
// files still being written under a temporary name (*.part, *.tmp, *~).
func Ignored(name string) bool {
	lower := strings.ToLower(name)
	return strings.HasPrefix(name, ".") || strings.HasSuffix(lower, ".part") || strings.HasSuffix(lower, ".tmp") ||
		strings.HasSuffix(name, "~") || name == processedDir || name == failedDir
}

const (
	processedDir = "processed"
	failedDir    = "failed"
)

// folder is one watched intake folder.
type folder struct {
	store.IntakeQueue
	abs string
}

// candidate is a file waiting to be stable. size and mtime are from the last look at it.
type candidate struct {
	path  string
	dir   string
	due   time.Time
	size  int64
	mtime time.Time
	seen  bool
	// tries counts ingests that failed for a passing reason (the database, the disk).
	tries int
	index int
}

type candidates []*candidate

func (h candidates) Len() int           { return len(h) }
func (h candidates) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h candidates) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *candidates) Push(x any) {
	c := x.(*candidate)
	c.index = len(*h)
	*h = append(*h, c)
}
func (h *candidates) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	c.index = -1
	return c
}

// job is a stable file handed to a worker.
type job struct {
	f     folder
	c     *candidate
	size  int64
	mtime time.Time
}

// result is a worker's answer: retry means the file is still there because of a passing
// failure and should be tried again later.
type result struct {
	c     *candidate
	retry bool
	// kept: the file stays in place (after=keep) and was ingested as it is now.
	kept bool
	size int64
	mt   time.Time
}

// watcher is Run's state, touched only by Run's goroutine.
type watcher struct {
	in       *Intake
	fs       *fsnotify.Watcher
	folders  map[string]folder // by absolute path
	pending  map[string]*candidate
	queue    candidates
	ready    []job
	inflight map[string]bool
	// dirty: a file in flight changed again; look at it once its worker is done.
	dirty map[string]bool
	// kept remembers files left in place (after=keep) as ingested, so they are not
	// read again until they change.
	kept map[string]keptFile
}

func newWatcher(in *Intake, fw *fsnotify.Watcher) *watcher {
	return &watcher{in: in, fs: fw, folders: map[string]folder{}, pending: map[string]*candidate{}, inflight: map[string]bool{},
		dirty: map[string]bool{}, kept: map[string]keptFile{}}
}

type keptFile struct {
	size  int64
	mtime time.Time
}

// Run watches until ctx ends. Files being ingested when it ends are finished first.
func (in *Intake) Run(ctx context.Context) error {
	fw, err := fsnotify.NewBufferedWatcher(4096)
	if err != nil {
		return fmt.Errorf("intake watcher: %w", err)
	}
	defer fw.Close()
	w := newWatcher(in, fw)

	// Workers store blobs and build cases in parallel (fsync-bound); one committer writes
	// what they staged in batches, since the store has one writer anyway.
	jobs := make(chan job)
	stagedFiles := make(chan *staged, maxBatch)
	results := make(chan result, maxBatch)
	var workers, committer sync.WaitGroup
	for range in.cfg.Workers {
		workers.Go(func() {
			for j := range jobs {
				if st, r := in.prepare(ctx, j); st != nil {
					stagedFiles <- st
				} else {
					results <- r
				}
			}
		})
	}
	committer.Go(func() { in.commit(ctx, stagedFiles, results) })
	defer func() {
		close(jobs)
		go func() {
			for range results {
			}
		}()
		workers.Wait()
		close(stagedFiles)
		committer.Wait()
		close(results)
	}()

	w.sync(ctx)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	rescan := time.NewTicker(in.cfg.Rescan)
	defer rescan.Stop()
	for {
		w.arm(timer)
		var send chan job
		var next job
		if len(w.ready) > 0 {
			send, next = jobs, w.ready[0]
		}
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			w.event(ev)
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			w.watchError(err)
		case <-in.reconcile:
			w.sync(ctx)
		case <-rescan.C:
			w.sync(ctx)
		case <-timer.C:
			w.check(time.Now())
		case send <- next:
			w.ready = w.ready[1:]
		case r := <-results:
			w.done(r)
		}
	}
}

// watchError handles an error from the OS watcher. On overflow the OS dropped events, so
// every folder is scanned: a file whose event was lost is found that way.
func (w *watcher) watchError(err error) {
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		w.in.cfg.Log.Warn("intake: too many file events at once; scanning every intake folder")
		w.scanAll()
		return
	}
	w.in.cfg.Log.Error("intake: watcher error", "err", err)
}

// arm points the timer at the earliest due candidate.
func (w *watcher) arm(t *time.Timer) {
	if len(w.queue) == 0 {
		t.Reset(time.Hour)
		return
	}
	t.Reset(max(time.Until(w.queue[0].due), 0))
}

// sync reads the queues with intake on, starts and stops watching their folders, and
// scans every folder.
func (w *watcher) sync(ctx context.Context) {
	qs, err := w.in.cfg.Store.IntakeQueues(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.in.cfg.Log.Error("intake: reading intake folders failed", "err", err)
		}
		return
	}
	want := map[string]folder{}
	for _, q := range qs {
		f := folder{IntakeQueue: q, abs: IntakeAbs(w.in.cfg.DataDir, q.Dir)}
		want[f.abs] = f
	}
	for abs := range w.folders {
		if _, ok := want[abs]; !ok {
			w.fs.Remove(abs)
			delete(w.folders, abs)
			for p, c := range w.pending {
				if c.dir == abs {
					w.drop(p)
				}
			}
			w.in.cfg.Log.Info("intake: stopped watching", "dir", abs)
		}
	}
	for abs, f := range want {
		_, had := w.folders[abs]
		if err := PrepareIntakeDir(w.in.cfg.DataDir, f.Dir); err != nil {
			w.in.cfg.Log.Error("intake: folder unusable", "queue", f.Name, "dir", abs, "err", err)
			continue
		}
		// Adding a watch again is harmless, and brings back one the OS dropped when the
		// folder was deleted and created anew.
		if err := w.fs.Add(abs); err != nil {
			w.in.cfg.Log.Error("intake: cannot watch folder", "queue", f.Name, "dir", abs, "err", err)
			continue
		}
		w.folders[abs] = f
		if !had {
			w.in.cfg.Log.Info("intake: watching", "queue", f.Name, "dir", abs, "mode", f.Mode, "after", f.After)
		}
	}
	w.scanAll()
}

// scanAll looks at every file in every folder, for files whose events were lost or that
// arrived while the server was down.
func (w *watcher) scanAll() {
	now := time.Now()
	present := map[string]bool{}
	for abs := range w.folders {
		entries, err := os.ReadDir(abs)
		if err != nil {
			w.in.cfg.Log.Error("intake: cannot list folder", "dir", abs, "err", err)
			continue
		}
		for _, e := range entries {
			if e.IsDir() || Ignored(e.Name()) {
				continue
			}
			p := filepath.Join(abs, e.Name())
			present[p] = true
			if w.pending[p] != nil || w.inflight[p] {
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue
			}
			if k, ok := w.kept[p]; ok && k.size == info.Size() && k.mtime.Equal(info.ModTime()) {
				continue
			}
			c := &candidate{path: p, dir: abs, size: info.Size(), mtime: info.ModTime(), seen: true, due: now}
			if d := w.in.cfg.Debounce - now.Sub(info.ModTime()); d > 0 {
				c.due = now.Add(d)
			}
			w.add(c)
		}
	}
	// Forget kept files that are gone (deleted, or their folder no longer watched).
	for p := range w.kept {
		if !present[p] {
			delete(w.kept, p)
		}
	}
}

func (w *watcher) add(c *candidate) {
	w.pending[c.path] = c
	heap.Push(&w.queue, c)
}

func (w *watcher) drop(p string) {
	if c := w.pending[p]; c != nil {
		heap.Remove(&w.queue, c.index)
		delete(w.pending, p)
	}
}

// event notes a file that appeared or changed; it is looked at once the debounce passed.
func (w *watcher) event(ev fsnotify.Event) {
	if !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Write) && !ev.Has(fsnotify.Chmod) {
		return
	}
	dir, name := filepath.Split(ev.Name)
	dir = filepath.Clean(dir)
	if _, ok := w.folders[dir]; !ok || Ignored(name) {
		return
	}
	if w.inflight[ev.Name] {
		w.dirty[ev.Name] = true
		return
	}
	due := time.Now().Add(w.in.cfg.Debounce)
	if c := w.pending[ev.Name]; c != nil {
		c.due = due
		heap.Fix(&w.queue, c.index)
		return
	}
	c := &candidate{path: ev.Name, dir: dir, due: due}
	if info, err := os.Lstat(ev.Name); err == nil {
		c.seen, c.size, c.mtime = true, info.Size(), info.ModTime()
	}
	w.add(c)
}

// check looks at every due candidate: a file unchanged since the last look, and not
// modified within the debounce, is handed to a worker; a changed one waits again.
func (w *watcher) check(now time.Time) {
	for len(w.queue) > 0 && !w.queue[0].due.After(now) {
		c := heap.Pop(&w.queue).(*candidate)
		delete(w.pending, c.path)
		f, ok := w.folders[c.dir]
		if !ok {
			continue
		}
		info, err := os.Lstat(c.path)
		if err != nil || info.IsDir() {
			continue // gone, or a folder: nothing to ingest
		}
		size, mtime := info.Size(), info.ModTime()
		if k, ok := w.kept[c.path]; ok && k.size == size && k.mtime.Equal(mtime) {
			continue
		}
		quiet := now.Sub(mtime) >= w.in.cfg.Debounce
		if !info.Mode().IsRegular() || c.seen && c.size == size && c.mtime.Equal(mtime) && quiet {
			w.inflight[c.path] = true
			w.ready = append(w.ready, job{f: f, c: c, size: size, mtime: mtime})
			continue
		}
		c.seen, c.size, c.mtime = true, size, mtime
		c.due = now.Add(w.in.cfg.Debounce)
		if !quiet {
			c.due = mtime.Add(w.in.cfg.Debounce)
		}
		w.add(c)
	}
}

// done takes a worker's result back.
func (w *watcher) done(r result) {
	p := r.c.path
	delete(w.inflight, p)
	if r.kept {
		w.kept[p] = keptFile{size: r.size, mtime: r.mt}
	} else {
		delete(w.kept, p)
	}
	dirty := w.dirty[p]
	delete(w.dirty, p)
	if _, ok := w.folders[r.c.dir]; !ok {
		return
	}
	switch {
	case r.retry:
		r.c.tries++
		r.c.seen = false
		r.c.due = time.Now().Add(min(time.Duration(1<<min(r.c.tries, 6))*time.Second, time.Minute))
		w.add(r.c)
	case dirty:
		w.add(&candidate{path: p, dir: r.c.dir, due: time.Now().Add(w.in.cfg.Debounce)})
	}
}

// staged is a file whose blob is stored and whose cases are built, waiting for the
// committer.
type staged struct {
	j    job
	log  *slog.Logger
	info fs.FileInfo
	drop store.IntakeDrop
}

// prepare does the part of ingesting that needs no database writes: checks the file,
// stores its blob and builds its cases. It returns either a staged drop for the committer
// or a final result (the file is gone, refused, or to be tried again).
func (in *Intake) prepare(ctx context.Context, j job) (*staged, result) {
	res := result{c: j.c}
	name := filepath.Base(j.c.path)
	log := in.cfg.Log.With("queue", j.f.Name, "file", name)
	var info fs.FileInfo
	reject := func(reason string, attrs ...any) (*staged, result) {
		return nil, in.reject(j, log, info, reason, attrs...)
	}
	retry := func(msg string, err error) (*staged, result) {
		log.Error("intake: "+msg+"; will try again", "err", err, "try", j.c.tries+1)
		return nil, result{c: j.c, retry: true}
	}

	root, err := os.OpenRoot(j.f.abs)
	if err != nil {
		return retry("cannot open the intake folder", err)
	}
	defer root.Close()
	info, err = root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, res
	}
	if err != nil {
		return retry("cannot look at the file", err)
	}
	switch {
	case info.Mode()&fs.ModeSymlink != 0:
		return reject("it is a symbolic link; intake takes only regular files, so links (which may point outside the folder) are refused: copy the file itself into the folder")
	case !info.Mode().IsRegular():
		return reject(fmt.Sprintf("it is not a regular file (%s); intake takes only regular files", info.Mode().Type()))
	case info.Size() > in.cfg.MaxFileSize:
		return reject(fmt.Sprintf("it is %d bytes, larger than the limit of %d bytes (--max-file-size)", info.Size(), in.cfg.MaxFileSize))
	}
	folderPath := j.f.Dir + "/" + time.Now().Format(time.DateOnly)
	if _, err := CleanPath("file name", folderPath+"/"+name); err != nil {
		return reject(fmt.Sprintf("its name cannot be a team file name: %v; rename the file", err))
	}
	f, err := root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, res
	}
	if err != nil {
		// os.Root refuses a path that resolves outside the folder.
		return reject(fmt.Sprintf("it cannot be opened inside the intake folder: %v", err))
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !os.SameFile(st, info) {
		return nil, result{c: j.c, retry: true} // replaced between the look and the open: look again
	}

	blob, err := in.cfg.Blobs.Put(f, in.cfg.MaxFileSize)
	var tooLarge *TooLargeError
	if errors.As(err, &tooLarge) {
		return reject(fmt.Sprintf("it is larger than the limit of %d bytes (--max-file-size)", tooLarge.Limit))
	}
	if err != nil {
		return retry("storing the file failed", err)
	}
	contentType := RefineContentType(name, blob.ContentType)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return retry("cannot re-read the file", err)
	}
	var build func(path string) []store.NewCase
	if j.f.Mode == store.ModeRecords {
		records, err := ParseRecords(name, f)
		if err != nil {
			reason := "records mode: " + err.Error()
			if err := in.cfg.Store.RecordIntakeFailure(ctx, j.f.QueueID, j.f.TeamID, blob.SHA256, name, blob.Size, contentType, reason); err != nil && ctx.Err() == nil {
				log.Error("intake: recording the failure failed", "err", err)
			}
			return reject(reason, "sha256", blob.SHA256)
		}
		build = func(string) []store.NewCase { return records }
	} else {
		text, truncated, isText, err := textPrefix(f, contentType)
		if err != nil {
			return retry("cannot re-read the file", err)
		}
		build = func(path string) []store.NewCase {
			return []store.NewCase{{Title: truncateRunes(name, store.MaxCaseTitle), Data: fileCaseData(path, blob, contentType, text, truncated, isText)}}
		}
	}
	return &staged{j: j, log: log, info: info, drop: store.IntakeDrop{QueueID: j.f.QueueID, TeamID: j.f.TeamID, Folder: folderPath, Name: name,
		SHA256: blob.SHA256, Size: blob.Size, ContentType: contentType, Cases: build}}, res
}

// reject sets a file aside in failed/ with the reason; info is the file as intake saw it.
func (in *Intake) reject(j job, log *slog.Logger, info fs.FileInfo, reason string, attrs ...any) result {
	moved, err := setAside(j.f.abs, j.f.Name, filepath.Base(j.c.path), reason, time.Now(), info)
	if errors.Is(err, errReplaced) {
		log.Info("intake: the file was replaced before it was set aside; the new one will be read")
		return result{c: j.c}
	}
	if err != nil {
		log.Error("intake: file could not be ingested, and moving it to failed/ failed too; it stays in place",
			append(attrs, "reason", reason, "err", err)...)
		return result{c: j.c, retry: true}
	}
	log.Warn("intake: file refused", append(attrs, "reason", reason, "moved_to", moved)...)
	return result{c: j.c}
}

// maxBatch bounds how many staged files one transaction commits.
const maxBatch = 128

// commit takes staged files as they come and commits whatever has gathered in one
// transaction, then moves each file on. It returns once staged is closed and drained.
func (in *Intake) commit(ctx context.Context, stagedFiles <-chan *staged, results chan<- result) {
	// Files already staged are committed even during shutdown: their blobs are stored,
	// and finishing a batch is quick.
	ctx = context.WithoutCancel(ctx)
	for first := range stagedFiles {
		batch := []*staged{first}
	gather:
		for len(batch) < maxBatch {
			select {
			case st, ok := <-stagedFiles:
				if !ok {
					break gather
				}
				batch = append(batch, st)
			default:
				break gather
			}
		}
		drops := make([]store.IntakeDrop, len(batch))
		for i, st := range batch {
			drops[i] = st.drop
		}
		outs, errs, err := in.cfg.Store.IngestDrops(ctx, drops)
		if err != nil {
			in.cfg.Log.Error("intake: saving cases failed; the files stay in place and will be tried again", "files", len(batch), "err", err)
			for _, st := range batch {
				results <- result{c: st.j.c, retry: true}
			}
			continue
		}
		made := false
		for i := range batch {
			made = made || errs[i] == nil && !outs[i].Duplicate
		}
		if made {
			in.cfg.Wake()
		}
		for i, st := range batch {
			results <- in.finish(st, outs[i], errs[i])
		}
	}
}

// finish logs what a committed drop did and moves the file on: to processed/<date>/,
// away (delete) or nowhere (keep); a drop the store refused goes to failed/.
func (in *Intake) finish(st *staged, out store.IntakeOutcome, err error) result {
	j, log := st.j, st.log
	res := result{c: j.c}
	switch {
	case errors.Is(err, store.ErrNotFound):
		log.Warn("intake: the queue was deleted; the file stays in place", "err", err)
		return res
	case err != nil:
		return in.reject(j, log, st.info, err.Error(), "sha256", st.drop.SHA256)
	case out.Duplicate:
		log.Info("intake: same content as an earlier drop; no new case", "sha256", st.drop.SHA256, "first_file", out.FilePath)
	default:
		log.Info("intake: ingested", "cases", len(out.CaseIDs), "path", out.FilePath, "sha256", st.drop.SHA256, "bytes", st.drop.Size)
	}
	var moveErr error
	switch j.f.After {
	case store.AfterDelete:
		moveErr = removeFile(j.c.path, st.info)
	case store.AfterKeep:
		res.kept, res.size, res.mt = true, st.info.Size(), st.info.ModTime()
	default:
		_, moveErr = moveNoReplace(j.c.path, filepath.Join(j.f.abs, processedDir, time.Now().Format(time.DateOnly)), filepath.Base(j.c.path), st.info)
	}
	switch {
	case moveErr == nil, errors.Is(moveErr, fs.ErrNotExist):
	case errors.Is(moveErr, errReplaced):
		log.Info("intake: the file was replaced after it was read; the new one will be read")
	default:
		log.Error("intake: moving the ingested file on failed; it stays in place (its content will not make a second case)", "after", j.f.After, "err", moveErr)
		res.kept, res.size, res.mt = true, st.info.Size(), st.info.ModTime()
	}
	return res
}

// maxCaseText is how much of a text file a file-mode case carries in its data.
const maxCaseText = 64 << 10

// textPrefix returns up to the first 64 KiB of a text file, cut at a character boundary;
// ok is false for content that is not UTF-8 text.
func textPrefix(r io.Reader, contentType string) (text string, truncated, ok bool, err error) {
	if !IsText(contentType) {
		return "", false, false, nil
	}
	buf := make([]byte, maxCaseText+1)
	n, err := io.ReadFull(r, buf)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return "", false, false, err
	}
	b := buf[:n]
	if n > maxCaseText {
		b, truncated = b[:maxCaseText], true
		// Drop a character the cut split in two.
		for i := 0; i < utf8.UTFMax && len(b) > 0 && !utf8.Valid(b); i++ {
			b = b[:len(b)-1]
		}
	}
	if !utf8.Valid(b) {
		return "", false, false, nil
	}
	return string(b), truncated, true, nil
}

// fileCaseData is a file-mode case's data: where the file is and, for text, its start.
func fileCaseData(path string, blob Blob, contentType, text string, truncated, isText bool) string {
	d := struct {
		Path          string  `json:"path"`
		SHA256        string  `json:"sha256"`
		Size          int64   `json:"size"`
		ContentType   string  `json:"content_type"`
		Text          *string `json:"text,omitempty"`
		TextTruncated bool    `json:"text_truncated,omitempty"`
	}{Path: path, SHA256: blob.SHA256, Size: blob.Size, ContentType: contentType, TextTruncated: truncated}
	if isText {
		d.Text = &text
	}
	b, _ := json.Marshal(d)
	return string(b)
}

// freeName is name, or stem-N.ext for N = i when i > 1.
func freeName(name string, i int) string {
	if i == 1 {
		return name
	}
	ext := filepath.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	if stem == "" {
		stem, ext = name, ""
	}
	return fmt.Sprintf("%s-%d%s", stem, i, ext)
}

// errReplaced says the file at a path is no longer the one intake read: it was replaced
// meanwhile. The new file is left in place for the watcher to read.
var errReplaced = errors.New("the file was replaced while it was being ingested")

// take renames the file at src to tmp, atomically, so that what follows acts on exactly
// one file, and checks it is want (the file intake read). Checking first and moving after
// would race a writer renaming a new file over src: the new file would be moved away
// unread. A different file is put back beside src (under its name when free) and
// errReplaced returned.
func take(src, tmp string, want fs.FileInfo) error {
	if err := os.Rename(src, tmp); err != nil {
		return err
	}
	if got, err := os.Lstat(tmp); err == nil && os.SameFile(got, want) {
		return nil
	}
	if _, err := placeNoReplace(tmp, filepath.Dir(src), filepath.Base(src), nil); err != nil {
		return fmt.Errorf("put back %s: %w", src, err)
	}
	return errReplaced
}

// takeInto takes src (see take) under a temporary name in dir, creating dir if needed.
func takeInto(src, dir string, want fs.FileInfo) (string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	tmp := filepath.Join(dir, filepath.Base(src)+".taking-"+rand.Text()[:8])
	return tmp, take(src, tmp, want)
}

// moveNoReplace moves the file want from src into dir under name, or under name-2,
// name-3… when taken: a file already there is never overwritten. It returns where it went.
func moveNoReplace(src, dir, name string, want fs.FileInfo) (string, error) {
	tmp, err := takeInto(src, dir, want)
	if err != nil {
		return "", err
	}
	return placeNoReplace(tmp, dir, name, nil)
}

// removeFile deletes the file want at src (after=delete), unless src was replaced.
func removeFile(src string, want fs.FileInfo) error {
	// A hidden name in the intake folder: the watcher ignores it even if a crash left it.
	tmp := filepath.Join(filepath.Dir(src), "."+filepath.Base(src)+".deleting-"+rand.Text()[:8])
	if err := take(src, tmp, want); err != nil {
		return err
	}
	return os.Remove(tmp)
}

// placeNoReplace moves src into dir (which exists) under name, or name-2, name-3… when
// taken, never overwriting; reserve, when set, first claims the chosen name's companions
// (e.g. its .error.txt) and reports fs.ErrExist when they are taken.
func placeNoReplace(src, dir, name string, reserve func(dst string) (undo func(), err error)) (string, error) {
	for i := 1; ; i++ {
		dst := filepath.Join(dir, freeName(name, i))
		undo := func() {}
		if reserve != nil {
			u, err := reserve(dst)
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			if err != nil {
				return "", err
			}
			undo = u
		}
		// A hard link fails when dst exists, so nothing is overwritten even if another
		// process races us for the name.
		err := os.Link(src, dst)
		if errors.Is(err, fs.ErrExist) {
			undo()
			continue
		}
		if err != nil {
			// No hard links here (some file systems): rename once the name is free.
			if _, serr := os.Lstat(dst); serr == nil {
				undo()
				continue
			}
			if err := os.Rename(src, dst); err != nil {
				undo()
				return "", err
			}
			return dst, nil
		}
		if err := os.Remove(src); err != nil {
			return dst, fmt.Errorf("remove %s after linking it to %s: %w", src, dst, err)
		}
		return dst, nil
	}
}

// setAside moves a file that cannot be ingested to failed/, beside a <name>.error.txt
// that says why. The reason is written first, so a crash between the two steps leaves
// the file in place to be tried again, never a file in failed/ without its reason.
func setAside(dir, queue, name, reason string, now time.Time, want fs.FileInfo) (string, error) {
	text := fmt.Sprintf("%s could not be ingested into the queue %q.\n\nReason: %s\n\nRefused at: %s\nFix the file and drop it into %s again.\n",
		name, queue, reason, now.Format(time.RFC3339), dir)
	failed := filepath.Join(dir, failedDir)
	tmp, err := takeInto(filepath.Join(dir, name), failed, want)
	if err != nil {
		return "", err
	}
	return placeNoReplace(tmp, failed, name, func(dst string) (func(), error) {
		if _, err := os.Lstat(dst); err == nil {
			return nil, fs.ErrExist
		}
		p := dst + ".error.txt"
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if err != nil {
			return nil, err
		}
		_, werr := f.WriteString(text)
		if err := errors.Join(werr, f.Close()); err != nil {
			os.Remove(p)
			return nil, err
		}
		return func() { os.Remove(p) }, nil
	})
}
