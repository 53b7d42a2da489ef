package server

import "embed"

// consoleFiles are the web console: plain HTML, CSS and ES modules, served
// as they are (no JavaScript toolchain). It talks to the server only
// through the HTTP/JSON API, as any other client does.
//
//go:embed console
var consoleFiles embed.FS
