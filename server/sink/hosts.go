package sink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// ErrHostNotAllowed: a sink's address is outside sinks.allowed_hosts.
var ErrHostNotAllowed = errors.New("not in sinks.allowed_hosts")

// Hosts is sinks.allowed_hosts: the host names, IP addresses and CIDR
// ranges sinks may connect to. Empty allows every address. A host name is
// allowed when it is listed; an address when it is listed or in a listed
// range, checked again after DNS resolution, at every connect.
type Hosts struct {
	names    map[string]bool
	prefixes []netip.Prefix
}

// ParseHosts reads sinks.allowed_hosts; bad lists the entries that are
// neither a host name, an IP address nor a CIDR range.
func ParseHosts(entries []string) (h Hosts, bad []int) {
	for i, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		if p, err := netip.ParsePrefix(e); err == nil {
			h.prefixes = append(h.prefixes, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(e); err == nil {
			h.prefixes = append(h.prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		if e == "" || strings.ContainsAny(e, "/:@ \t") {
			bad = append(bad, i)
			continue
		}
		if h.names == nil {
			h.names = map[string]bool{}
		}
		h.names[e] = true
	}
	return h, bad
}

func (h Hosts) any() bool { return len(h.names) == 0 && len(h.prefixes) == 0 }

func (h Hosts) addrAllowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range h.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// checkName says whether host (a name or an address, from a URL) may be
// connected to at all: a name that is not listed can still resolve into a
// listed range, so it passes when ranges are listed, and is checked when
// connecting.
func (h Hosts) checkName(host string) error {
	if h.any() || h.names[strings.ToLower(host)] {
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if h.addrAllowed(a) {
			return nil
		}
		return fmt.Errorf("%s is %w", host, ErrHostNotAllowed)
	}
	if len(h.prefixes) > 0 {
		return nil
	}
	return fmt.Errorf("%s is %w", host, ErrHostNotAllowed)
}

// dialer returns a dialer that refuses, after DNS resolution, addresses
// that host may not reach.
func (h Hosts) dialer(host string) *net.Dialer {
	d := &net.Dialer{}
	if h.any() || h.names[strings.ToLower(host)] {
		return d
	}
	d.ControlContext = func(_ context.Context, _, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%s: %w", address, err)
		}
		if !h.addrAllowed(ap.Addr()) {
			return fmt.Errorf("%s resolves to %s, which is %w", host, ap.Addr(), ErrHostNotAllowed)
		}
		return nil
	}
	return d
}
