//go:build !windows

package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/verify"
)

// links puts one Proxy in front of each address the measurements use; all
// share the current RTT.
type links struct {
	proxies map[string]*Proxy
	rtt     time.Duration
}

func newLinks() *links { return &links{proxies: map[string]*Proxy{}} }

// to returns the proxy in front of addr, starting it if needed.
func (l *links) to(addr string) (*Proxy, error) {
	if p := l.proxies[addr]; p != nil {
		return p, nil
	}
	p, err := Listen(addr)
	if err != nil {
		return nil, err
	}
	p.SetRTT(l.rtt)
	l.proxies[addr] = p
	return p, nil
}

func (l *links) setRTT(d time.Duration) {
	l.rtt = d
	for _, p := range l.proxies {
		p.SetRTT(d)
	}
}

func (l *links) close() {
	for _, p := range l.proxies {
		p.Close()
	}
}

// leg is one server reached through its proxy.
type leg struct {
	kind  Kind
	proxy *Proxy
	ep    *endpoint.Endpoint
}

func (s *Servers) leg(l *links, key string) (leg, error) {
	k := KindByKey(key)
	addr, ok := s.Addr[key]
	if !ok {
		return leg{}, fmt.Errorf("%s has no %s server", s.Name, key)
	}
	p, err := l.to(addr)
	if err != nil {
		return leg{}, err
	}
	return leg{kind: k, proxy: p, ep: s.endpoint(k, p.Addr())}, nil
}

// turns sums, over a leg's connections since the last Take, the turns the
// caller waited for (answered by end) and all turns (waiting up to wait for
// the connections to close). conns counts the connections.
func turns(p *Proxy, end time.Time, wait time.Duration) (awaited, total, conns int, logs []*ConnLog, err error) {
	logs = p.Take()
	if err := checkLogs(logs); err != nil {
		return 0, 0, 0, nil, err
	}
	for _, c := range logs {
		awaited += c.TurnsBefore(end)
		if wait > 0 {
			c.Wait(wait)
		}
		total += c.Turns()
	}
	return awaited, total, len(logs), logs, nil
}

// bothRun is one verify.Both through the proxies.
type bothRun struct {
	wall      time.Duration
	completed map[string]int // per kind key
}

func verifyBoth(ctx context.Context, s *Servers, in, out leg) (bothRun, error) {
	in.proxy.Take()
	out.proxy.Take()
	start := time.Now()
	ri, ro := verify.Both(ctx, in.ep, out.ep, s.Password, verify.Trust{Roots: s.Roots})
	end := time.Now()
	if ri.Outcome != verify.OK || ro.Outcome != verify.OK {
		return bothRun{}, fmt.Errorf("%s: verify.Both: incoming %s (%s), outgoing %s (%s)", s.Name, ri.Outcome, ri.Detail, ro.Outcome, ro.Detail)
	}
	r := bothRun{wall: end.Sub(start), completed: map[string]int{}}
	for _, l := range []leg{in, out} {
		a, _, _, _, err := turns(l.proxy, end, 0)
		if err != nil {
			return bothRun{}, err
		}
		r.completed[l.kind.Key] = a
	}
	return r, nil
}

// loginRun is one verify.Login through a proxy.
type loginRun struct {
	wall           time.Duration
	awaited, total int
	conns          int
	logs           []*ConnLog
}

// login runs verify.Login once. wait > 0 waits for the connection to close
// so that total includes a goodbye that outlives Login.
func login(ctx context.Context, s *Servers, l leg, wait time.Duration) (loginRun, error) {
	l.proxy.Take()
	start := time.Now()
	r := verify.Login(ctx, *l.ep, s.Password, verify.Trust{Roots: s.Roots})
	end := time.Now()
	if r.Outcome != verify.OK {
		return loginRun{}, fmt.Errorf("%s: verify.Login(%s): %s (%s)", s.Name, l.kind.Key, r.Outcome, r.Detail)
	}
	a, t, n, logs, err := turns(l.proxy, end, wait)
	if err != nil {
		return loginRun{}, err
	}
	return loginRun{wall: end.Sub(start), awaited: a, total: t, conns: n, logs: logs}, nil
}

func verifyTrust(s *Servers) verify.Trust { return verify.Trust{Roots: s.Roots} }
