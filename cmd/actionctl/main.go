// Command actionctl is the command-line client of an actiond server: it
// manages the server's streams, watches their events, classifies clips and
// asks for the model and the server's health. See `actionctl help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/actiond/actiond/cmd/actionctl/internal/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := ctl.Run(ctx, os.Args[1:], ctl.Env{
		Stdout:   os.Stdout,
		Stderr:   os.Stderr,
		Getenv:   os.Getenv,
		Terminal: isTerminal(os.Stdout),
	})
	stop()
	os.Exit(code)
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
