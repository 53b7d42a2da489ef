// Package hostlist is the one allow-list of hosts that actiond connects
// out to: ingest.allowed_hosts (the cameras a stream may reach) and
// sinks.allowed_hosts (the brokers and webhooks a sink may reach). A list
// names its configuration key in its errors. It is checked twice: on the
// host a URL names, when the URL is configured, and on every address
// dialled, after DNS, so a name that resolves into a refused range (or is
// made to, later) connects nowhere.
//
// Standard library only: it must not import the rest of ingest, whose
// libav the sinks have no use for.
package hostlist

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"syscall"
)

// ErrNotAllowed: a URL names a host, or its name resolves to an address,
// that is not in the list.
var ErrNotAllowed = errors.New("host not allowed")

// List is the hosts a connection may reach: host names, IP addresses and
// CIDR prefixes. A nil List allows any host.
//
// A listed name is trusted with whatever it resolves to. Any other host is
// judged by address: an IP literal when its URL is checked, and the address
// that each connection dials.
type List struct {
	key      string // the configuration key, for errors
	names    map[string]bool
	prefixes []netip.Prefix
}

// EntryError is Parse's error: the list's entry Index is no host name, IP
// address or CIDR prefix.
type EntryError struct {
	Index int
	Entry string
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("[%d]: %q is not a host name, an IP address or a CIDR prefix (such as 10.0.0.0/8)", e.Index, e.Entry)
}

// Error is a host, or the address it resolved to, outside a list.
type Error struct {
	Key  string     // the list's configuration key, such as ingest.allowed_hosts
	Host string     // the host the URL names
	Addr netip.Addr // the address Host resolved to; invalid when Host itself is refused
}

// Error is "host not allowed: " and the Reason.
func (e *Error) Error() string { return ErrNotAllowed.Error() + ": " + e.Reason() }

// Reason says what is outside which list, for a message whose context says
// already that a host was refused.
func (e *Error) Reason() string {
	if e.Addr.IsValid() {
		return fmt.Sprintf("%s resolves to %s, which is not in %s", e.Host, e.Addr, e.Key)
	}
	return fmt.Sprintf("%s is not in %s", e.Host, e.Key)
}

func (e *Error) Unwrap() error { return ErrNotAllowed }

var hostName = regexp.MustCompile(`^([A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?$`)

// Parse parses entries, the value of the configuration key key (which the
// list names in its errors). It returns nil, any host, when there are no
// entries. Its error, an *EntryError, names the first entry that is no host
// name, IP address or CIDR prefix; the list it returns then holds the
// other entries.
func Parse(key string, entries []string) (*List, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	l := &List{key: key, names: map[string]bool{}}
	var first error
	for i, e := range entries {
		e = strings.TrimSpace(e)
		if p, err := netip.ParsePrefix(e); err == nil {
			l.prefixes = append(l.prefixes, p.Masked())
			continue
		}
		if a, ok := parseIP(e); ok {
			l.prefixes = append(l.prefixes, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		name := normalHost(e)
		if len(name) > 253 || !hostName.MatchString(name) {
			if first == nil {
				first = &EntryError{Index: i, Entry: e}
			}
			continue
		}
		l.names[name] = true
	}
	return l, first
}

// parseIP parses an IP address, bracketed or not, without a zone; IPv4
// in IPv6 counts as IPv4.
func parseIP(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

func normalHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

func (l *List) hasAddr(a netip.Addr) bool {
	a = a.WithZone("").Unmap()
	for _, p := range l.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Check is the check when a URL is configured, on the host it names: an
// IP address must be in the list; a name must be listed, or is left to the
// check at connect when the list has addresses. Its error is an *Error.
func (l *List) Check(host string) error {
	if l == nil {
		return nil
	}
	if a, ok := parseIP(host); ok {
		if !l.hasAddr(a) {
			return &Error{Key: l.key, Host: a.String()}
		}
		return nil
	}
	if l.names[normalHost(host)] || len(l.prefixes) > 0 {
		return nil
	}
	return &Error{Key: l.key, Host: host}
}

// Dialer returns a dialer for a URL whose host is host that connects only
// to addresses the list allows: the check runs on the address being
// dialled, after DNS, so it holds for redirects too. A nil List's dialer
// connects anywhere.
func (l *List) Dialer(host string) *net.Dialer {
	d := &net.Dialer{}
	if l == nil || l.names[normalHost(host)] {
		return d
	}
	d.ControlContext = func(_ context.Context, _, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: cannot tell the address of %s", ErrNotAllowed, address)
		}
		a := ap.Addr().WithZone("").Unmap()
		if l.hasAddr(a) {
			return nil
		}
		if h, ok := parseIP(host); ok && h == a {
			return &Error{Key: l.key, Host: a.String()}
		}
		return &Error{Key: l.key, Host: host, Addr: a}
	}
	return d
}
