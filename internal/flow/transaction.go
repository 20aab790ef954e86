// A transaction, after its trigger-specific start (change.go, sync.go,
// propagate.go): which logins the password belongs to (the one rule), one
// login to each distinct server, and one store of every login.

package flow

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/credsync/credsync/internal/code"
	"github.com/credsync/credsync/internal/verify"
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

// facts asks Thunderbird for its accounts, fingerprinting saved logins
// with a fresh salt.
func (e *Engine) facts(ctx context.Context) (salt string, accounts []Account, err error) {
	return e.list(ctx, newSalt())
}

// list asks Thunderbird for its accounts; without a salt, saved logins are
// neither read nor fingerprinted (Saved.Known false).
func (e *Engine) list(ctx context.Context, salt string) (string, []Account, error) {
	if e.Thunderbird == nil {
		return "", nil, &Error{Code: code.StoreFailed, Message: "this credsync has no Thunderbird to store the password in"}
	}
	accounts, err := e.Thunderbird.Accounts(ctx, salt)
	if err != nil {
		return "", nil, &Error{Code: code.InternalError, Message: fmt.Sprintf("Thunderbird did not list its accounts (%v); nothing was changed", err)}
	}
	return salt, accounts, nil
}

// hold records the plan's accounts for the audit record and marks its
// logins busy.
func (e *Engine) hold(subject *auditSubject, p plan) (unlock func(), err error) {
	subject.touched(p)
	return e.lock(p.logins())
}

// checkInForce is the policy step of a password already in force (sync,
// propagation): the rules every password obeys, nothing of a provider's.
func checkInForce(password string, p plan, progress Progress) error {
	progress(StepPolicy, Running)
	if rule, msg := checkNew("", password); rule != "" {
		progress(StepPolicy, Failed)
		return &Error{Code: code.PolicyViolation, Rule: rule, Message: msg, Accounts: p.accounts}
	}
	progress(StepPolicy, OK)
	return nil
}

// checkAndStore is every transaction's end: one login to each distinct
// server with password (unless the caller already did: checked), then,
// when all accepted it, one store of every login.
func (e *Engine) checkAndStore(ctx context.Context, salt string, p plan, password string, checked bool, changed bool, progress Progress) (Result, error) {
	result := Result{Changed: changed, Accounts: p.accounts, Servers: p.servers}
	if !checked {
		e.check(ctx, result.Servers, password, progress)
	}
	if !allOK(result.Servers) {
		msg := "a server did not accept the password; Thunderbird keeps the one it has"
		if changed {
			msg = "the provider accepted the new password but a server did not; Thunderbird keeps the old password"
		}
		c := code.VerificationFailed
		if anyExpired(result.Servers) {
			// Right but expired: the user must change it, not retype it.
			c = code.PasswordExpired
			msg = "a server says the password has expired or must be changed: change it now; Thunderbird keeps the one it has"
		}
		return result, &Error{Code: c, Changed: changed, Message: msg,
			Accounts: result.Accounts, Servers: result.Servers, Logins: statesOf(p, Unchanged)}
	}
	if e.Thunderbird == nil { // the command line's change: verified is the end
		return result, nil
	}
	written, err := e.store(ctx, salt, p, password, progress)
	result.Logins = written
	if err != nil {
		err.Changed, err.Accounts, err.Servers = changed, result.Accounts, result.Servers
		return result, err
	}
	result.Stored = true
	return result, nil
}

// store sends the one store request: every login, all or none.
func (e *Engine) store(ctx context.Context, salt string, p plan, password string, progress Progress) ([]Written, *Error) {
	writes := make([]Write, len(p.targets))
	for i, t := range p.targets {
		writes[i] = Write{Login: t.Login, Password: password, Expect: t.saved}
	}
	progress(StepSaving, Running)
	written, err := e.Thunderbird.Store(ctx, salt, writes)
	var refused *StoreError
	switch {
	case err == nil && allStored(p, written):
		progress(StepSaving, OK)
		return statesOf(p, Stored), nil
	case err == nil:
		progress(StepSaving, Failed)
		return merge(p, written), &Error{Code: code.StoreUnconfirmed, Logins: merge(p, written),
			Message: "Thunderbird answered without confirming every login; they hold either the old or the new password: run \"I already changed it\" with the new password"}
	case asStoreError(err, &refused):
		progress(StepSaving, Failed)
		logins := merge(p, refused.Logins)
		return logins, &Error{Code: refused.Code, Logins: logins, Message: storeMessage(refused, logins)}
	default:
		progress(StepSaving, Failed)
		logins := statesOf(p, Unknown)
		return logins, &Error{Code: code.StoreUnconfirmed, Logins: logins,
			Message: fmt.Sprintf("Thunderbird did not confirm the new logins (%v); they hold either the old or the new password: run \"I already changed it\" with the new password", err)}
	}
}

func asStoreError(err error, target **StoreError) bool {
	se, ok := err.(*StoreError)
	*target = se
	return ok
}

// storeMessage says what a refused store left: nothing, or which logins
// may hold the new password.
func storeMessage(refused *StoreError, logins []Written) string {
	var uncertain []string
	for _, l := range logins {
		if l.State == Stored || l.State == Unknown {
			uncertain = append(uncertain, l.Username+" at "+l.Origin)
		}
	}
	if len(uncertain) == 0 {
		return refused.Message + "; no login holds the new password"
	}
	return refused.Message + "; these logins may hold the new password: " + strings.Join(uncertain, ", ")
}

// statesOf gives every login of the plan one state.
func statesOf(p plan, state LoginState) []Written {
	out := make([]Written, len(p.targets))
	for i, t := range p.targets {
		out[i] = Written{t.Login, state}
	}
	return out
}

// merge takes the extension's states for the plan's logins; a login it did
// not mention is Unknown.
func merge(p plan, reported []Written) []Written {
	states := map[string]LoginState{}
	for _, w := range reported {
		states[w.key()] = w.State
	}
	out := statesOf(p, Unknown)
	for i := range out {
		if s, ok := states[out[i].key()]; ok {
			out[i].State = s
		}
	}
	return out
}

func allStored(p plan, reported []Written) bool {
	for _, w := range merge(p, reported) {
		if w.State != Stored {
			return false
		}
	}
	return true
}

// check logs in once to each server, all in parallel, with one deadline,
// and fills in their results. Progress reports each side as one step:
// running while any of its servers is asked, then ok only if all said ok.
func (e *Engine) check(ctx context.Context, servers []Checked, password string, progress Progress) {
	timeout := e.VerifyTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var mu sync.Mutex
	pending := map[Side]int{}
	failed := map[Side]bool{}
	for _, s := range servers {
		pending[s.Side]++
	}
	for _, side := range []Side{Incoming, Outgoing} {
		if pending[side] > 0 {
			progress(stepOf(side), Running)
		}
	}
	var wg sync.WaitGroup
	for i := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &servers[i]
			s.Result = verify.Login(ctx, s.Server, password, e.Trust)
			mu.Lock()
			defer mu.Unlock()
			failed[s.Side] = failed[s.Side] || s.Result.Outcome != verify.OK
			if pending[s.Side]--; pending[s.Side] == 0 {
				state := OK
				if failed[s.Side] {
					state = Failed
				}
				progress(stepOf(s.Side), state)
			}
		}()
	}
	wg.Wait()
}

func stepOf(side Side) Step {
	if side == Incoming {
		return StepCheckingIncoming
	}
	return StepCheckingOutgoing
}

// allOK: every server accepted the password.
func allOK(servers []Checked) bool {
	return !anyOutcome(servers, func(o verify.Outcome) bool { return o != verify.OK })
}

// anyOK: some server accepted the password, so the provider has it.
func anyOK(servers []Checked) bool { return anyOutcome(servers, is(verify.OK)) }

// anyExpired: some server said the password has expired (or must be
// changed first).
func anyExpired(servers []Checked) bool { return anyOutcome(servers, is(verify.PasswordExpired)) }

// anyRefused: some server answered and refused the password.
func anyRefused(servers []Checked) bool { return anyOutcome(servers, is(verify.AuthFailed)) }

func is(want verify.Outcome) func(verify.Outcome) bool {
	return func(o verify.Outcome) bool { return o == want }
}

func anyOutcome(servers []Checked, match func(verify.Outcome) bool) bool {
	for _, s := range servers {
		if match(s.Result.Outcome) {
			return true
		}
	}
	return false
}
