package web

// registerCaseTriggers registers the operations of this file.
// Case triggers: the binding of an Assignment to the queue it consumes.
func (s *Server) registerCaseTriggers() {}
