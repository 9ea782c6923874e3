package web

// registerQueues registers the operations of this file.
// Queues: listQueues, createQueue, getQueue, updateQueue, deleteQueue, listQueueAgents.
func (s *Server) registerQueues() {}
