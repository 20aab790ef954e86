package flow

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/credsync/credsync/internal/code"
)

// The one rule (PROTOCOL.md, "Which logins a password belongs to"): two
// password logins belong to the same password when
//
//  1. they have the same user name on the same host (host without case,
//     whatever the protocol: one mailbox set up as an IMAP and as a POP3
//     account), or
//  2. they are the incoming and outgoing login of one account and carry
//     the same user name.
//
// A transaction writes the closure of its seeds under both. Servers that
// sign in without a password (OAuth2, Kerberos, NTLM, certificates, none)
// are never part of it.

// ref is one server of one listed account.
type ref struct {
	account int
	side    Side
}

func (r ref) server(accounts []Account) *Server {
	if r.side == Incoming {
		return accounts[r.account].Incoming
	}
	return accounts[r.account].Outgoing
}

// plan is what a transaction writes and checks.
type plan struct {
	accounts []Touched
	// targets are the logins to write, each with what it holds now.
	targets []target
	// servers are the distinct servers of the targets, each once.
	servers []Checked
}

type target struct {
	Login
	saved Saved
}

// passwordServer: the server exists and signs in with a password.
func passwordServer(s *Server) bool {
	return s != nil && s.AuthMethod.UsesPassword()
}

// accountSeeds are the password servers of accounts[i], both sides: an
// account's two servers share its password whatever their user names.
func accountSeeds(accounts []Account, i int) []ref {
	var seeds []ref
	for _, side := range []Side{Incoming, Outgoing} {
		if r := (ref{i, side}); passwordServer(r.server(accounts)) {
			seeds = append(seeds, r)
		}
	}
	return seeds
}

// loginSeeds are the password servers whose saved login is l.
func loginSeeds(accounts []Account, l Login) []ref {
	var seeds []ref
	for i := range accounts {
		for _, side := range []Side{Incoming, Outgoing} {
			r := ref{i, side}
			if s := r.server(accounts); passwordServer(s) && (Login{s.Origin, s.Username}).key() == l.key() {
				seeds = append(seeds, r)
			}
		}
	}
	return seeds
}

// belongTogether applies the rule to two password servers.
func belongTogether(accounts []Account, a, b ref) bool {
	sa, sb := a.server(accounts), b.server(accounts)
	if sa.Username != sb.Username {
		return false
	}
	return strings.EqualFold(sa.Host, sb.Host) || a.account == b.account
}

// closure is every password server reachable from seeds under the rule, in
// the accounts' order.
func closure(accounts []Account, seeds []ref) []ref {
	in := map[ref]bool{}
	queue := append([]ref(nil), seeds...)
	for _, s := range seeds {
		in[s] = true
	}
	var all []ref
	for i := range accounts {
		all = append(all, accountSeeds(accounts, i)...)
	}
	for len(queue) > 0 {
		r := queue[0]
		queue = queue[1:]
		for _, other := range all {
			if !in[other] && belongTogether(accounts, r, other) {
				in[other] = true
				queue = append(queue, other)
			}
		}
	}
	var out []ref
	for _, r := range all {
		if in[r] {
			out = append(out, r)
		}
	}
	return out
}

// makePlan turns the closure of seeds into the logins to write, the
// accounts they belong to and the distinct servers to check. skip, when
// set, leaves out logins that need no write (propagation: they hold the
// password already). A server the extension listed in a form credsync
// cannot use fails the plan: its login might share the password.
func makePlan(accounts []Account, seeds []ref, skip func(Saved) bool) (plan, error) {
	var p plan
	logins := map[string]bool{}
	servers := map[string]bool{}
	touched := map[int]int{} // account index -> index in p.accounts
	for _, r := range closure(accounts, seeds) {
		s := r.server(accounts)
		a := accounts[r.account]
		if s.Problem != "" {
			return plan{}, &Error{Code: code.InvalidRequest, Message: fmt.Sprintf("Thunderbird listed the %s server of %q in a form credsync cannot use (%s); nothing was changed", r.side, a.Name, s.Problem)}
		}
		if skip != nil && skip(s.Saved) {
			continue
		}
		l := Login{s.Origin, s.Username}
		if !logins[l.key()] {
			logins[l.key()] = true
			p.targets = append(p.targets, target{l, s.Saved})
		}
		if key := serverKey(s); !servers[key] {
			servers[key] = true
			p.servers = append(p.servers, Checked{Side: r.side, Server: s.Endpoint})
		}
		i, ok := touched[r.account]
		if !ok {
			i = len(p.accounts)
			touched[r.account] = i
			p.accounts = append(p.accounts, Touched{ID: a.ID, Name: a.Name})
		}
		p.accounts[i].Sides = append(p.accounts[i].Sides, r.side)
	}
	return p, nil
}

// serverKey identifies a server to log in to: the same one reached with the
// same user name and settings is checked once.
func serverKey(s *Server) string {
	return strings.Join([]string{string(s.Protocol), strings.ToLower(s.Host), strconv.Itoa(s.Port),
		strconv.Itoa(int(s.Security)), strconv.Itoa(int(s.AuthMethod)), strings.ToLower(s.CertSHA256), s.Username}, "\n")
}

func (p plan) logins() []Login {
	out := make([]Login, len(p.targets))
	for i, t := range p.targets {
		out[i] = t.Login
	}
	return out
}

// findAccount is the listed account with this id.
func findAccount(accounts []Account, id string) (int, error) {
	for i, a := range accounts {
		if a.ID == id {
			return i, nil
		}
	}
	return 0, &Error{Code: code.UnknownAccount, Message: "no Thunderbird account with that id"}
}

// passwordSeeds are the seeds of accounts[i], or not_password_account when
// its incoming server (the one a password change is about) signs in
// without a password.
func passwordSeeds(accounts []Account, i int) ([]ref, error) {
	a := accounts[i]
	main := a.Incoming
	if main == nil {
		main = a.Outgoing
	}
	if main == nil || !passwordServer(main) {
		return nil, &Error{Code: code.NotPasswordAccount, Message: "the account signs in without a password (OAuth2, Kerberos, NTLM or a certificate); credsync has nothing to update"}
	}
	return accountSeeds(accounts, i), nil
}
