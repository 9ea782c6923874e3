//go:build race

package web_test

// raceEnabled: the race detector slows the server several times over, so load-heavy
// tests scale down (the plain run keeps the full sizes the acceptance points name).
const raceEnabled = true
