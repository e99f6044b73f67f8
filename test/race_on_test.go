//go:build race

package test

// raceEnabled makes TestMain build the server with -race too, so that a data
// race the end-to-end traffic provokes in the server fails the test.
const raceEnabled = true
