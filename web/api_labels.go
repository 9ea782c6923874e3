package web

// registerLabels registers the operations of this file.
// Queue labels and the labels on cases.
func (s *Server) registerLabels() {}
