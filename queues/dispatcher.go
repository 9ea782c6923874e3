package queues

import (
	"context"
	"log/slog"
	"time"

	"docket/store"
)

// RunStarter starts runs on a trigger's due cases, as many as its free slots allow.
// runtime.Engine provides it: the cases are claimed and their runs created in one
// transaction (store.DispatchCases), then the runs are handed to the executors. It
// reports how many it started: none when no case is due or every slot is taken.
type RunStarter interface {
	StartCases(ctx context.Context, t store.CaseTrigger) (started int, err error)
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

// pass fills every enabled trigger's free slots with due cases. A trigger never takes
// more than its concurrency, so one busy queue cannot starve the others.
func (d *Dispatcher) pass(ctx context.Context) {
	triggers, err := d.st.EnabledCaseTriggers(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("reading case triggers failed", "err", err)
		}
		return
	}
	for _, t := range triggers {
		if ctx.Err() != nil {
			return
		}
		if _, err := d.starter.StartCases(ctx, t); err != nil && ctx.Err() == nil {
			d.log.Error("starting runs on cases failed", "trigger_id", t.ID, "queue_id", t.CaseQueueID, "err", err)
		}
	}
}
