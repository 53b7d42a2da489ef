package sink

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 && os.Getenv("SINK_TEST_HOST") == "" {
		// Every sink, client, broker connection and log the tests made is
		// gone.
		// paho's own connect-retry and disconnect goroutines end by
		// themselves, up to its retry interval after Disconnect returns.
		if err := goleak.Find(
			goleak.IgnoreAnyFunction("github.com/eclipse/paho%2emqtt%2egolang.(*client).Connect.func1"),
			goleak.IgnoreAnyFunction("github.com/eclipse/paho%2emqtt%2egolang.(*client).Disconnect.func1"),
		); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines left after the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
