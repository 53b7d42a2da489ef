package ingest

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

// ErrHostNotAllowed: a camera URL names a host, or its name resolves to an
// address, that is not in the allowed hosts (ingest.allowed_hosts).
var ErrHostNotAllowed = errors.New("host not allowed")

// HostList is the hosts streams may connect to: host names, IP addresses
// and CIDR prefixes (ingest.allowed_hosts). An empty list allows any host.
//
// A listed name is trusted with whatever it resolves to. Any other host is
// judged by address: an IP literal when the stream is added, and the
// address that each connection dials, after DNS, so that a name that
// resolves into a refused range (or is made to, later) connects nowhere.
type HostList struct {
	names    map[string]bool
	prefixes []netip.Prefix
}

var hostName = regexp.MustCompile(`^([A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?$`)

// ParseHostList parses entries; nil (any host) when there are none. Its
// error names the first entry that is no host name, IP address or CIDR
// prefix, by its index.
func ParseHostList(entries []string) (*HostList, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	l := &HostList{names: map[string]bool{}}
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
			return nil, fmt.Errorf("[%d]: %q is not a host name, an IP address or a CIDR prefix (such as 10.0.0.0/8)", i, e)
		}
		l.names[name] = true
	}
	return l, nil
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

func (l *HostList) hasAddr(a netip.Addr) bool {
	a = a.WithZone("").Unmap()
	for _, p := range l.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// CheckHost is the check when a stream is added: an IP address must be in
// the list, a name must be listed, or be left to the check at connect when
// the list has addresses. nil l allows any host.
func (l *HostList) CheckHost(host string) error {
	if l == nil {
		return nil
	}
	if a, ok := parseIP(host); ok {
		if !l.hasAddr(a) {
			return fmt.Errorf("%w: %s is not in ingest.allowed_hosts", ErrHostNotAllowed, a)
		}
		return nil
	}
	if l.names[normalHost(host)] || len(l.prefixes) > 0 {
		return nil
	}
	return fmt.Errorf("%w: %s is not in ingest.allowed_hosts", ErrHostNotAllowed, host)
}

// dialContext returns a dial function that connects only to addresses the
// list allows for host (the URL's): the check runs on the address being
// dialled, after DNS, so it holds for redirects too. nil l dials anywhere.
func (l *HostList) dialContext(host string) func(ctx context.Context, network, address string) (net.Conn, error) {
	d := &net.Dialer{}
	if l == nil {
		return d.DialContext
	}
	trusted := l.names[normalHost(host)]
	d.Control = func(_, address string, _ syscall.RawConn) error {
		if trusted {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: cannot tell the address of %s", ErrHostNotAllowed, address)
		}
		if !l.hasAddr(ap.Addr()) {
			if a, ok := parseIP(host); ok && a == ap.Addr().WithZone("").Unmap() {
				return fmt.Errorf("%w: %s is not in ingest.allowed_hosts", ErrHostNotAllowed, a)
			}
			return fmt.Errorf("%w: %s resolves to %s, which is not in ingest.allowed_hosts", ErrHostNotAllowed, host, ap.Addr().WithZone("").Unmap())
		}
		return nil
	}
	return d.DialContext
}
