// Package progress shows a command's steps on one terminal line, redrawn
// in place, and nothing at all when the output is not a terminal.
//
// It must not be used by the server, whose output is logs.
package progress
