package server

import (
	"regexp"

	"github.com/actiond/actiond/ingest"
)

// urlInText finds URLs in free text: a scheme, "://", and everything up to
// white space or a quote.
var urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'` + "`" + `]*`)

// redactSecrets returns text with the credentials of every URL in it taken
// out (user:password@, ?password=...), for text that quotes what a user
// wrote: configuration values, command lines.
func redactSecrets(text string) string {
	return urlInText.ReplaceAllStringFunc(text, ingest.RedactURL)
}
