package runtime

import (
	"sync"
	"sync/atomic"

	"docket/store"
)

// Event is something a run's watchers see live: a status change, a committed message or
// a streamed model token. Messages carry their sequence number, so a watcher that
// missed some can read them back from the database.
type Event struct {
	Type    string // status, message or token
	RunID   string
	TeamID  string
	Status  string
	Message *store.Message
	Token   string
}

// Hub fans events out to watchers in process. It never blocks a run: a watcher that
// cannot keep up loses tokens and is told to catch up from the database.
type Hub struct {
	mu   sync.Mutex
	subs map[string]map[*Subscription]struct{}
}

// Subscription receives a run's events (or every run's, for the "" key) until Close.
type Subscription struct {
	C chan Event
	// Lagged is set when an event was dropped because C was full.
	Lagged atomic.Bool
	hub    *Hub
	key    string
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[string]map[*Subscription]struct{}{}} }

// Subscribe watches one run, or every run when runID is "".
func (h *Hub) Subscribe(runID string) *Subscription {
	s := &Subscription{C: make(chan Event, 256), hub: h, key: runID}
	h.mu.Lock()
	if h.subs[runID] == nil {
		h.subs[runID] = map[*Subscription]struct{}{}
	}
	h.subs[runID][s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Close stops the subscription.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	delete(s.hub.subs[s.key], s)
	if len(s.hub.subs[s.key]) == 0 {
		delete(s.hub.subs, s.key)
	}
	s.hub.mu.Unlock()
}

// Publish delivers ev to the run's watchers and the all-runs watchers.
func (h *Hub) Publish(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, key := range []string{ev.RunID, ""} {
		for s := range h.subs[key] {
			select {
			case s.C <- ev:
			default:
				s.Lagged.Store(true)
			}
		}
	}
}
