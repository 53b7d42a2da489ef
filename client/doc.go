// Package client is the Go client library of the actiond gRPC API, used by
// actionctl and other programs. It imports only proto. It fills in with the
// API itself.
package client
