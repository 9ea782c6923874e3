package queues

import (
	"context"
	"log/slog"
	"time"

	"docket/store"
)

// RunStarter starts a run on a trigger's next due case. runtime.Engine provides it: the
// case is claimed and its run created in one transaction (store.DispatchCase), then the
// run is handed to the executors. ok is false when the trigger has nothing to start:
// no due case, or as many in progress as its concurrency allows.
type RunStarter interface {
	StartNextCase(ctx context.Context, t store.CaseTrigger) (ok bool, err error)
}

// Dispatcher starts runs on due cases, for every enabled case trigger, never beyond a
// trigger's concurrency. It holds no state of its own: each pass reads the triggers and
// claims from the store, so a restart loses nothing.
type Dispatcher struct {
	st      *store.Store
	starter RunStarter
	log     *slog.Logger
	wake    chan struct{}
	// idle bounds how long a pass can be late when nothing woke the dispatcher.
	idle time.Duration
}

// New returns a dispatcher; Run starts it.
func New(st *store.Store, starter RunStarter, log *slog.Logger) *Dispatcher {
	return &Dispatcher{st: st, starter: starter, log: log, wake: make(chan struct{}, 1), idle: 30 * time.Second}
}

// Wake makes the dispatcher look for work now: a case was created or released, a run
// ended (freeing a slot), a trigger changed.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run dispatches until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		began := time.Now()
		d.pass(ctx)
		wait := d.idle
		if due, ok, err := d.st.NextCaseDue(ctx, began); err == nil && ok {
			wait = min(wait, max(time.Until(due), time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-d.wake:
		case <-t.C:
		}
		t.Stop()
	}
	return nil
}

// pass starts runs until no trigger can start another, taking the triggers in turn so
// one busy queue does not starve the others.
func (d *Dispatcher) pass(ctx context.Context) {
	triggers, err := d.st.EnabledCaseTriggers(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("reading case triggers failed", "err", err)
		}
		return
	}
	for len(triggers) > 0 && ctx.Err() == nil {
		open := triggers[:0]
		for _, t := range triggers {
			ok, err := d.starter.StartNextCase(ctx, t)
			if err != nil {
				if ctx.Err() == nil {
					d.log.Error("starting a run on a case failed", "trigger_id", t.ID, "queue_id", t.CaseQueueID, "err", err)
				}
				continue
			}
			if ok {
				open = append(open, t)
			}
		}
		triggers = open
	}
}
