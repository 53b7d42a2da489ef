package hostlist

import (
	"errors"
	"net"
	"strings"
	"testing"
)

func TestHostList(t *testing.T) {
	l, err := Parse("ingest.allowed_hosts", []string{"cam-1.site", "10.20.0.0/16", "192.0.2.7", "[2001:db8::1]", "Gate.Example.COM."})
	if err != nil {
		t.Fatal(err)
	}
	for host, ok := range map[string]bool{
		"cam-1.site": true, "CAM-1.SITE": true, "gate.example.com": true,
		"10.20.3.4": true, "10.21.0.1": false, "192.0.2.7": true, "192.0.2.8": false,
		"2001:db8::1": true, "::ffff:10.20.0.9": true, "127.0.0.1": false,
		// Not listed, but the list has addresses: judged at connect.
		"other.site": true,
	} {
		if err := l.Check(host); (err == nil) != ok || (err != nil && !errors.Is(err, ErrNotAllowed)) {
			t.Errorf("Check(%s) = %v, want allowed %v", host, err, ok)
		}
	}
	names, _ := Parse("ingest.allowed_hosts", []string{"cam-1.site"})
	if err := names.Check("other.site"); err == nil || err.Error() != "host not allowed: other.site is not in ingest.allowed_hosts" {
		t.Errorf("a name not listed, with only names listed: %v", err)
	}
	var any *List
	if err := any.Check("anything"); err != nil {
		t.Errorf("an empty list refuses: %v", err)
	}
	for _, bad := range []string{"10.0.0.0/33", "cam 1", "http://cam", "*.site", ""} {
		if _, err := Parse("ingest.allowed_hosts", []string{"ok.site", bad}); err == nil || !strings.HasPrefix(err.Error(), "[1]: ") {
			t.Errorf("Parse(%q) = %v, want an error naming entry [1]", bad, err)
		}
	}
}

// A list with a bad entry still holds the good ones, and its errors name
// its own key: the sinks' list says sinks.allowed_hosts.
func TestHostListKeyAndBadEntry(t *testing.T) {
	l, err := Parse("sinks.allowed_hosts", []string{"10.0.0.0/8", "no/pe:x", "192.0.2.7"})
	var ee *EntryError
	if !errors.As(err, &ee) || ee.Index != 1 || ee.Entry != "no/pe:x" {
		t.Fatalf("Parse error %v, want entry [1]", err)
	}
	if err := l.Check("192.0.2.7"); err != nil {
		t.Errorf("a good entry after a bad one: %v", err)
	}
	err = l.Check("127.0.0.1")
	var he *Error
	if !errors.As(err, &he) || he.Reason() != "127.0.0.1 is not in sinks.allowed_hosts" || !errors.Is(err, ErrNotAllowed) {
		t.Errorf("Check(127.0.0.1) = %v", err)
	}
}

// The dialer checks the address dialled, after DNS: localhost is not
// listed, so its address is judged, and refused; a listed name connects.
func TestHostListDialer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	fenced, _ := Parse("ingest.allowed_hosts", []string{"10.0.0.0/8"})
	_, err = fenced.Dialer("localhost").DialContext(t.Context(), "tcp", net.JoinHostPort("localhost", port))
	if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "host not allowed: localhost resolves to ") ||
		!strings.Contains(err.Error(), ", which is not in ingest.allowed_hosts") {
		t.Errorf("dial localhost outside the list: %v", err)
	}
	_, err = fenced.Dialer("127.0.0.1").DialContext(t.Context(), "tcp", ln.Addr().String())
	if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "host not allowed: 127.0.0.1 is not in ingest.allowed_hosts") {
		t.Errorf("dial 127.0.0.1 outside the list: %v", err)
	}

	for _, l := range []*List{nil, mustParse(t, "localhost"), mustParse(t, "127.0.0.0/8")} {
		c, err := l.Dialer("localhost").DialContext(t.Context(), "tcp", net.JoinHostPort("localhost", port))
		if err != nil {
			t.Errorf("dial localhost with %v: %v", l, err)
			continue
		}
		c.Close()
	}
}

func mustParse(t *testing.T, entries ...string) *List {
	t.Helper()
	l, err := Parse("ingest.allowed_hosts", entries)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
