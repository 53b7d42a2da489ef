// Command actionctl is the command-line client of an actiond server. The
// server's gRPC API arrives with the server; until then it only reports its
// version.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Println("actionctl dev")
		return
	}
	fmt.Fprintln(os.Stderr, "actionctl: the actiond gRPC API is not available yet; usage: actionctl version")
	os.Exit(2)
}
