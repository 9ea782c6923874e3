package web

// registerCases registers the operations of this file.
// Cases: create, list, search, get (with events), delete, clear, bulk operations.
func (s *Server) registerCases() {}
