package flow

import (
	"slices"
	"strings"
	"testing"

	"github.com/credsync/credsync/internal/endpoint"
)

// listed is a listed server for the rule's table: "imap:Host:user", with an
// optional ":oauth" or ":none" auth method.
func listed(spec string) *Server {
	if spec == "" {
		return nil
	}
	parts := strings.Split(spec, ":")
	proto, host, user := endpoint.Protocol(parts[0]), parts[1], parts[2]
	s := &Server{Endpoint: endpoint.Endpoint{Protocol: proto, Host: host, Port: 993, Security: endpoint.TLS,
		AuthMethod: endpoint.AuthPasswordCleartext, Username: user}}
	if len(parts) > 3 {
		s.AuthMethod = map[string]endpoint.AuthMethod{"oauth": endpoint.AuthOAuth2, "none": endpoint.AuthNone, "gssapi": endpoint.AuthGSSAPI}[parts[3]]
	}
	scheme := map[endpoint.Protocol]string{endpoint.IMAP: "imap", endpoint.POP3: "mailbox", endpoint.SMTP: "smtp"}[proto]
	if proto == endpoint.SMTP {
		s.Port = 465
	} else if proto == endpoint.POP3 {
		s.Port = 995
	}
	s.Origin = scheme + "://" + host
	return s
}

func acct(id, in, out string) Account {
	return Account{ID: id, Name: "name of " + id, Incoming: listed(in), Outgoing: listed(out)}
}

// TestWhichLoginsAPasswordBelongsTo is the one rule (transaction.go), for every
// way a transaction starts.
func TestWhichLoginsAPasswordBelongsTo(t *testing.T) {
	tests := []struct {
		name     string
		accounts []Account
		account  string // seeds: this account's logins; else login
		login    Login  // seeds: the accounts using this saved login
		logins   []string
		touched  []string // "id:sides"
		servers  int
		code     string
	}{{
		name: "one account, both servers",
		accounts: []Account{
			acct("a1", "imap:mail.example.org:alice", "smtp:mail.example.org:alice"),
		},
		account: "a1",
		logins:  []string{"imap://mail.example.org alice", "smtp://mail.example.org alice"},
		touched: []string{"a1:incoming,outgoing"},
		servers: 2,
	}, {
		name: "the same mailbox as an IMAP and a POP3 account",
		accounts: []Account{
			acct("imap", "imap:mail.example.org:alice", "smtp:mail.example.org:alice"),
			acct("pop", "pop3:mail.example.org:alice", "smtp:mail.example.org:alice"),
		},
		account: "pop",
		logins:  []string{"imap://mail.example.org alice", "smtp://mail.example.org alice", "mailbox://mail.example.org alice"},
		touched: []string{"imap:incoming,outgoing", "pop:incoming,outgoing"},
		servers: 3, // the SMTP server and login are shared: checked once
	}, {
		name: "an SMTP server shared by accounts with different users",
		accounts: []Account{
			acct("alice", "imap:mail.example.org:alice", "smtp:smtp.example.org:alice"),
			acct("bob", "imap:mail.example.org:bob", "smtp:smtp.example.org:bob"),
			acct("relay", "imap:other.example.org:carol", "smtp:smtp.example.org:alice"),
		},
		account: "alice",
		// carol's account sends as alice: alice's SMTP login is written (it is
		// one saved login), carol's own mailbox is not; bob is untouched.
		logins:  []string{"imap://mail.example.org alice", "smtp://smtp.example.org alice"},
		touched: []string{"alice:incoming,outgoing", "relay:outgoing"},
		servers: 2,
	}, {
		name: "the same incoming login, another outgoing user",
		accounts: []Account{
			acct("a", "imap:mail.example.org:alice", "smtp:smtp.example.org:alice"),
			acct("b", "imap:mail.example.org:alice", "smtp:smtp.example.org:bob"),
		},
		account: "b",
		// b's two servers share b's password, so alice's login follows on
		// both accounts; bob's own SMTP login is b's outgoing one.
		logins:  []string{"imap://mail.example.org alice", "smtp://smtp.example.org alice", "smtp://smtp.example.org bob"},
		touched: []string{"a:incoming,outgoing", "b:incoming,outgoing"},
		servers: 3,
	}, {
		name: "host-name case",
		accounts: []Account{
			acct("a1", "imap:Mail.Example.ORG:alice", "smtp:mail.example.org:alice"),
			acct("a2", "pop3:mail.EXAMPLE.org:alice", ""),
			acct("a3", "imap:mail.example.org:Alice", ""), // user names are exact
		},
		account: "a2",
		logins:  []string{"imap://Mail.Example.ORG alice", "smtp://mail.example.org alice", "mailbox://mail.EXAMPLE.org alice"},
		touched: []string{"a1:incoming,outgoing", "a2:incoming"},
		servers: 3,
	}, {
		name: "an account's two user names: both seeded, only the chosen account",
		accounts: []Account{
			acct("a1", "imap:imap.example.org:alice", "smtp:smtp.example.org:alice@example.org"),
			acct("a2", "imap:imap2.example.org:alice@example.org", "smtp:smtp.example.org:alice@example.org"),
		},
		account: "a1",
		// a2's incoming login has another host and is reached only through
		// a2's own pairing (same user name on both sides of a2).
		logins:  []string{"imap://imap.example.org alice", "smtp://smtp.example.org alice@example.org", "imap://imap2.example.org alice@example.org"},
		touched: []string{"a1:incoming,outgoing", "a2:incoming,outgoing"},
		servers: 3,
	}, {
		name: "accounts without password auth are never touched",
		accounts: []Account{
			acct("a1", "imap:mail.example.org:alice", "smtp:mail.example.org:alice:none"),
			acct("kerberos", "imap:mail.example.org:alice:gssapi", "smtp:mail.example.org:alice"),
		},
		account: "a1",
		logins:  []string{"imap://mail.example.org alice", "smtp://mail.example.org alice"},
		touched: []string{"a1:incoming", "kerberos:outgoing"},
		servers: 2,
	}, {
		name: "an OAuth2 account with the same user and host",
		accounts: []Account{
			acct("a1", "imap:mail.example.org:alice", ""),
			acct("oauth", "imap:mail.example.org:alice:oauth", "smtp:mail.example.org:alice:oauth"),
		},
		account: "a1",
		logins:  []string{"imap://mail.example.org alice"},
		touched: []string{"a1:incoming"},
		servers: 1,
	}, {
		name: "an OAuth2 account cannot be changed",
		accounts: []Account{
			acct("oauth", "imap:mail.example.org:alice:oauth", "smtp:mail.example.org:alice:oauth"),
		},
		account: "oauth",
		code:    "not_password_account",
	}, {
		name: "a saved login: its accounts' other side with the same user, and its siblings",
		accounts: []Account{
			acct("a1", "imap:imap.example.org:alice", "smtp:smtp.example.org:alice"),
			acct("a2", "pop3:imap.example.org:alice", ""),
			acct("shared", "imap:other.example.org:dave", "smtp:smtp.example.org:alice"),
		},
		login:   Login{"IMAP://imap.example.org", "alice"},
		logins:  []string{"imap://imap.example.org alice", "smtp://smtp.example.org alice", "mailbox://imap.example.org alice"},
		touched: []string{"a1:incoming,outgoing", "a2:incoming", "shared:outgoing"},
		servers: 3,
	}, {
		name: "a saved SMTP login does not reach a mailbox of another user",
		accounts: []Account{
			acct("a1", "imap:imap.example.org:alice", "smtp:relay.example.org:relay"),
			acct("a2", "imap:imap.example.org:bob", "smtp:relay.example.org:relay"),
		},
		login:   Login{"smtp://relay.example.org", "relay"},
		logins:  []string{"smtp://relay.example.org relay"},
		touched: []string{"a1:outgoing", "a2:outgoing"},
		servers: 1,
	}, {
		name:     "no such account",
		accounts: []Account{acct("a1", "imap:mail.example.org:alice", "")},
		account:  "a9",
		code:     "unknown_account",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seeds []ref
			if tt.account != "" {
				i, err := findAccount(tt.accounts, tt.account)
				if err == nil {
					seeds, err = passwordSeeds(tt.accounts, i)
				}
				if tt.code != "" || err != nil {
					if fe, ok := err.(*Error); !ok || string(fe.Code) != tt.code {
						t.Fatalf("error %v, want %s", err, tt.code)
					}
					return
				}
			} else {
				seeds = loginSeeds(tt.accounts, tt.login)
			}
			p, err := makePlan(tt.accounts, seeds, nil)
			if err != nil {
				t.Fatal(err)
			}
			var logins, touched []string
			for _, l := range p.targets {
				logins = append(logins, l.Origin+" "+l.Username)
			}
			for _, a := range p.accounts {
				var sides []string
				for _, s := range a.Sides {
					sides = append(sides, string(s))
				}
				touched = append(touched, a.ID+":"+strings.Join(sides, ","))
			}
			if !slices.Equal(logins, tt.logins) {
				t.Errorf("logins\n  %q\nwant\n  %q", logins, tt.logins)
			}
			if !slices.Equal(touched, tt.touched) {
				t.Errorf("accounts %q, want %q", touched, tt.touched)
			}
			if len(p.servers) != tt.servers {
				t.Errorf("%d servers to check, want %d: %+v", len(p.servers), tt.servers, p.servers)
			}
		})
	}
}

// TestPlanRefusesAnUnusableServerItWouldSkip: a server listed in a form
// credsync cannot use, whose login might share the password, fails the
// plan instead of being left behind.
func TestPlanRefusesAnUnusableServerItWouldSkip(t *testing.T) {
	accounts := []Account{
		acct("a1", "imap:mail.example.org:alice", ""),
		acct("a2", "pop3:mail.example.org:alice", ""),
	}
	accounts[1].Incoming.Problem = `member "port" must be between 1 and 65535`
	seeds, err := passwordSeeds(accounts, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := makePlan(accounts, seeds, nil); err == nil || err.(*Error).Code != "invalid_request" {
		t.Fatalf("makePlan: %v, want invalid_request", err)
	}
	// Unrelated, it does not matter.
	accounts[1].Incoming.Username = "bob"
	if _, err := makePlan(accounts, seeds, nil); err != nil {
		t.Fatalf("makePlan with an unrelated unusable server: %v", err)
	}
}

// TestPlanSkipsLoginsThatHoldThePassword: propagation writes and checks
// only what still lacks the password.
func TestPlanSkipsLoginsThatHoldThePassword(t *testing.T) {
	accounts := []Account{acct("a1", "imap:mail.example.org:alice", "smtp:smtp.example.org:alice")}
	accounts[0].Incoming.Saved = Saved{Known: true, Exists: true, Fingerprint: "new"}
	accounts[0].Outgoing.Saved = Saved{Known: true, Exists: true, Fingerprint: "old"}
	p, err := makePlan(accounts, loginSeeds(accounts, Login{"imap://mail.example.org", "alice"}),
		func(s Saved) bool { return s.Known && s.Exists && s.Fingerprint == "new" })
	if err != nil {
		t.Fatal(err)
	}
	if len(p.targets) != 1 || p.targets[0].Origin != "smtp://smtp.example.org" || len(p.servers) != 1 || p.servers[0].Side != Outgoing {
		t.Fatalf("plan %+v: want only the outgoing login and server", p)
	}
	if p.targets[0].saved.Fingerprint != "old" {
		t.Errorf("the write would expect %+v, want the saved fingerprint", p.targets[0].saved)
	}
}
