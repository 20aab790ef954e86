package provider

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

func TestFileTime(t *testing.T) {
	for _, tc := range []struct {
		ft   int64
		want time.Time
	}{
		{fileTimeUnixEpoch, time.Unix(0, 0)},
		{134413445425699840, time.Date(2026, 12, 10, 2, 49, 2, 569984000, time.UTC)},
		{0, time.Date(1601, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if got := fileTime(tc.ft); !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("fileTime(%d) = %v, want %v", tc.ft, got, tc.want)
		}
	}
}

func TestADExpiryOf(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	ft := func(t time.Time) string {
		return strconv.FormatInt(t.Sub(time.Unix(0, 0)).Nanoseconds()/100+fileTimeUnixEpoch, 10)
	}
	last := now.Add(-27 * 24 * time.Hour)
	entry := func(attrs map[string]string) *ldap.Entry {
		e := &ldap.Entry{DN: "CN=Bob"}
		for k, v := range attrs {
			e.Attributes = append(e.Attributes, &ldap.EntryAttribute{Name: k, Values: []string{v}})
		}
		return e
	}
	const computed = "msDS-UserPasswordExpiryTimeComputed"
	for _, tc := range []struct {
		name   string
		attrs  map[string]string
		state  ExpiryState
		at     time.Time
		last   time.Time
		source string
	}{
		{"expires", map[string]string{computed: ft(now.Add(72 * time.Hour)), "pwdLastSet": ft(last)}, Expires, now.Add(72 * time.Hour), last, computed},
		{"expired", map[string]string{computed: ft(now.Add(-time.Hour)), "pwdLastSet": ft(last)}, Expired, now.Add(-time.Hour), last, computed},
		{"never", map[string]string{computed: "9223372036854775807", "pwdLastSet": ft(last)}, Never, time.Time{}, last, computed},
		{"must change", map[string]string{computed: "0", "pwdLastSet": "0"}, MustChange, time.Time{}, time.Time{}, computed},
		{"pwdLastSet 0 alone", map[string]string{"pwdLastSet": "0"}, MustChange, time.Time{}, time.Time{}, "pwdLastSet"},
		{"not readable", map[string]string{"pwdLastSet": ft(last)}, Unknown, time.Time{}, last, SourceNone},
		{"garbage", map[string]string{computed: "soon"}, Unknown, time.Time{}, time.Time{}, SourceNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := adExpiryOf(entry(tc.attrs), now)
			if x.State != tc.state || !x.At.Equal(tc.at) || !x.LastChanged.Equal(tc.last) || x.Source != tc.source {
				t.Errorf("adExpiryOf = %+v, want %s at %v, last %v, source %s", x, tc.state, tc.at, tc.last, tc.source)
			}
			if x.State == Unknown && x.Detail == "" {
				t.Error("unknown without a reason")
			}
		})
	}
}

func TestKpasswdURLDirectory(t *testing.T) {
	tg, err := parseKpasswdURL("kpasswd://dc.example.org?realm=EXAMPLE.ORG&ldap=ldaps://dc.example.org:1636/DC=example,DC=org")
	if err != nil {
		t.Fatal(err)
	}
	if tg.directory == nil || tg.directory.addr != "dc.example.org:1636" || !tg.directory.implicitTLS || tg.directory.base != "DC=example,DC=org" {
		t.Errorf("directory = %+v", tg.directory)
	}
	if tg, err := parseKpasswdURL("kpasswd://dc.example.org?realm=EXAMPLE.ORG"); err != nil || tg.directory != nil {
		t.Errorf("without ldap=: %+v, %v", tg, err)
	}
	if _, err := parseKpasswdURL("kpasswd://dc.example.org?ldap=http://dc.example.org"); err == nil {
		t.Error("ldap=http:// accepted")
	}
	x, err := ReadExpiry(context.Background(), kpasswd{}, Request{Username: "bob@example.org", Current: "pw", URL: "kpasswd://127.0.0.1:1?realm=EXAMPLE.ORG"})
	if err != nil || x.State != Unknown || !strings.Contains(x.Detail, "ldap=") {
		t.Errorf("kpasswd without ldap= = %+v, %v; want unknown naming ldap=", x, err)
	}
}

func TestReadExpiryWithoutReader(t *testing.T) {
	x, err := ReadExpiry(context.Background(), cpanel{}, Request{Username: "bob", Current: "pw", URL: "https://127.0.0.1:1"})
	if err != nil || x.State != Unknown || x.Source != SourceNone || !strings.Contains(x.Detail, "cpanel") {
		t.Errorf("ReadExpiry(cpanel) = %+v, %v", x, err)
	}
	for name, want := range map[string]bool{"ad": true, "ldap": true, "kpasswd": true, "cpanel": false, "aruba": false} {
		b, _ := Lookup(name)
		if _, ok := b.(ExpiryReader); ok != want || b.Info().Expiry != want {
			t.Errorf("%s: ExpiryReader %v, Info().Expiry %v; want %v", name, ok, b.Info().Expiry, want)
		}
	}
}

// pp is a password-policy response control: warning 0 (timeBeforeExpiration)
// or 1 (graceAuthNsRemaining) with its value, and error (-1: none).
type pp struct {
	warning int
	value   int64
	ppError int
}

// fakeDir answers one connection over implicit TLS like a directory: a
// bind (with an optional password-policy response control), base searches
// of the entries, the rootDSE and an AD account search.
type fakeDir struct {
	bindCode uint16
	bindMsg  string
	policy   *pp
	entries  map[string]map[string]string // DN → attributes
	denied   map[string]bool              // DNs a search is refused for

	st *fakeDirState // set by serve
}

type fakeDirState struct {
	mu     sync.Mutex
	binds  int
	ctrl   bool // the bind carried the password-policy request control
	done   chan struct{}
	others []string // operations other than bind and search
}

func (f *fakeDir) serve(t *testing.T, cfg *tls.Config) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.st = &fakeDirState{done: make(chan struct{})}
	st := f.st
	t.Cleanup(func() { ln.Close() })
	go func() {
		defer close(st.done)
		raw, err := ln.Accept()
		if err != nil {
			return
		}
		c := tls.Server(raw, cfg)
		defer c.Close()
		for {
			p, err := ber.ReadPacket(c)
			if err != nil || len(p.Children) < 2 {
				return
			}
			id, _ := p.Children[0].Value.(int64)
			op := p.Children[1]
			switch op.Tag {
			case ldap.ApplicationBindRequest:
				st.mu.Lock()
				st.binds++
				if len(p.Children) > 2 {
					for _, ctl := range p.Children[2].Children {
						if len(ctl.Children) > 0 && ber.DecodeString(ctl.Children[0].Data.Bytes()) == ldap.ControlTypeBeheraPasswordPolicy {
							st.ctrl = true
						}
					}
				}
				st.mu.Unlock()
				writeBindResponse(c, id, f.bindCode, f.bindMsg, f.policy)
			case ldap.ApplicationSearchRequest:
				f.search(c, id, op)
			case ldap.ApplicationUnbindRequest:
				return
			default:
				st.mu.Lock()
				st.others = append(st.others, ldap.ApplicationMap[uint8(op.Tag)])
				st.mu.Unlock()
				return
			}
		}
	}()
	return ln.Addr().String()
}

// writeBindResponse answers a bind, with a password-policy response
// control when policy is not nil.
func writeBindResponse(c net.Conn, id int64, code uint16, msg string, policy *pp) {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Response")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "MessageID"))
	r := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationBindResponse, nil, "Response")
	r.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, uint64(code), "resultCode"))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matchedDN"))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, msg, "diagnosticMessage"))
	p.AppendChild(r)
	if policy != nil {
		seq := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "PasswordPolicyResponseValue")
		if policy.warning >= 0 {
			w := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "warning")
			w.AppendChild(ber.NewInteger(ber.ClassContext, ber.TypePrimitive, ber.Tag(policy.warning), policy.value, "value"))
			seq.AppendChild(w)
		}
		if policy.ppError >= 0 {
			seq.AppendChild(ber.NewInteger(ber.ClassContext, ber.TypePrimitive, 1, uint64(policy.ppError), "error"))
		}
		ctl := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Control")
		ctl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, ldap.ControlTypeBeheraPasswordPolicy, "type"))
		ctl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(seq.Bytes()), "value"))
		ctls := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "Controls")
		ctls.AppendChild(ctl)
		p.AppendChild(ctls)
	}
	_, _ = c.Write(p.Bytes())
}

func (f *fakeDir) search(c net.Conn, id int64, op *ber.Packet) {
	base := ber.DecodeString(op.Children[0].Data.Bytes())
	scope, _ := op.Children[1].Value.(int64)
	switch {
	case base == "":
		writeEntry(c, id, "", map[string]string{"defaultNamingContext": "DC=example,DC=org"})
	case f.denied[base]:
		writeLDAP(c, id, ldap.ApplicationSearchResultDone, ldap.LDAPResultInsufficientAccessRights, "no")
		return
	case scope == ldap.ScopeBaseObject:
		if e, ok := f.entries[base]; ok {
			writeEntry(c, id, base, e)
		}
	default: // the AD account search
		for dn, e := range f.entries {
			if e["userPrincipalName"] != "" {
				writeEntry(c, id, dn, map[string]string{"userPrincipalName": e["userPrincipalName"]})
			}
		}
	}
	writeLDAP(c, id, ldap.ApplicationSearchResultDone, 0, "")
}

func (f *fakeDir) seen() (binds int, ctrl bool, others []string) {
	<-f.st.done
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	return f.st.binds, f.st.ctrl, f.st.others
}

func TestLDAPExpiry(t *testing.T) {
	const (
		dn     = "uid=bob,ou=people,dc=example,dc=org"
		policy = "cn=expiry,ou=policies,dc=example,dc=org"
	)
	changed := time.Now().UTC().Add(-10 * 24 * time.Hour).Truncate(time.Second)
	gt := changed.Format("20060102150405Z")
	day := int64(86400)
	for _, tc := range []struct {
		name    string
		fake    fakeDir
		state   ExpiryState
		at      time.Duration // from now, for Expires/Expired with a date
		source  string
		grace   int
		kind    Kind
		detail  string
		changed bool // LastChanged is pwdChangedTime
	}{
		{name: "warning window", fake: fakeDir{policy: &pp{warning: 0, value: 5 * day, ppError: -1}}, state: Expires, at: 5 * 24 * time.Hour, source: "ppolicy timeBeforeExpiration"},
		{name: "grace logins", fake: fakeDir{policy: &pp{warning: 1, value: 2, ppError: -1}}, state: Expired, source: "ppolicy graceAuthNsRemaining", grace: 2},
		{name: "expired", fake: fakeDir{bindCode: 49, policy: &pp{warning: -1, ppError: ppPasswordExpired}}, state: Expired, source: "ppolicy passwordExpired"},
		{name: "must change after a reset", fake: fakeDir{policy: &pp{warning: -1, ppError: ppChangeAfterReset}}, state: MustChange, source: "ppolicy changeAfterReset"},
		{name: "locked", fake: fakeDir{bindCode: 49, policy: &pp{warning: -1, ppError: ppAccountLocked}}, kind: Locked, detail: "locked"},
		{name: "wrong password", fake: fakeDir{bindCode: 49, policy: &pp{warning: -1, ppError: -1}}, kind: WrongCurrent},
		{name: "wrong password, no control", fake: fakeDir{bindCode: 49}, kind: WrongCurrent},
		{name: "computed from pwdChangedTime and pwdMaxAge",
			fake:  fakeDir{policy: &pp{warning: -1, ppError: -1}, entries: map[string]map[string]string{dn: {"pwdChangedTime": gt, "pwdPolicySubentry": policy}, policy: {"pwdMaxAge": "7776000"}}},
			state: Expires, at: 80 * 24 * time.Hour, source: "pwdChangedTime + pwdMaxAge", changed: true},
		{name: "no control at all: computed",
			fake:  fakeDir{entries: map[string]map[string]string{dn: {"pwdChangedTime": gt, "pwdPolicySubentry": policy}, policy: {"pwdMaxAge": "7776000"}}},
			state: Expires, at: 80 * 24 * time.Hour, source: "pwdChangedTime + pwdMaxAge", changed: true},
		{name: "pwdMaxAge 0",
			fake:  fakeDir{entries: map[string]map[string]string{dn: {"pwdChangedTime": gt, "pwdPolicySubentry": policy}, policy: {"pwdMaxAge": "0"}}},
			state: Never, source: "pwdMaxAge", changed: true},
		{name: "no policy named",
			fake:  fakeDir{entries: map[string]map[string]string{dn: {"pwdChangedTime": gt}}},
			state: Unknown, source: SourceNone, detail: "pwdPolicySubentry", changed: true},
		{name: "policy not readable",
			fake:  fakeDir{entries: map[string]map[string]string{dn: {"pwdChangedTime": gt, "pwdPolicySubentry": policy}}, denied: map[string]bool{policy: true}},
			state: Unknown, source: SourceNone, detail: "cannot be read", changed: true},
		{name: "no pwdChangedTime",
			fake:  fakeDir{entries: map[string]map[string]string{dn: {"pwdPolicySubentry": policy}, policy: {"pwdMaxAge": "7776000"}}},
			state: Unknown, source: SourceNone, detail: "pwdChangedTime"},
		{name: "entry not readable", fake: fakeDir{denied: map[string]bool{dn: true}}, state: Unknown, source: SourceNone, detail: "cannot be read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pki := newFakePKI(t)
			fake := tc.fake
			addr := fake.serve(t, pki.server)
			x, err := ReadExpiry(context.Background(), ldapBackend{}, Request{
				Username: "bob", Current: "Secret-pw-1", URL: "ldaps://" + addr + "/uid=%n,ou=people,dc=example,dc=org", Roots: pki.roots,
			})
			binds, ctrl, others := fake.seen()
			if binds != 1 || !ctrl || len(others) != 0 {
				t.Errorf("server saw %d binds (control %v) and %v; want one bind with the password-policy control, nothing else", binds, ctrl, others)
			}
			if tc.kind != "" {
				checkKind(t, err, tc.kind, tc.detail)
				return
			}
			if err != nil {
				t.Fatalf("Expiry() = %v", err)
			}
			if x.State != tc.state || x.Source != tc.source || tc.grace != 0 && x.Grace != tc.grace {
				t.Errorf("Expiry() = %+v, want %s from %s", x, tc.state, tc.source)
			}
			if tc.at != 0 {
				if want := time.Now().Add(tc.at); x.At.Sub(want).Abs() > 5*time.Second {
					t.Errorf("At = %v, want about %v", x.At, want)
				}
			}
			if tc.changed != x.LastChanged.Equal(changed) {
				t.Errorf("LastChanged = %v, want %v: %v", x.LastChanged, tc.changed, changed)
			}
			if tc.detail != "" && !strings.Contains(x.Detail, tc.detail) {
				t.Errorf("Detail = %q, want it to mention %q", x.Detail, tc.detail)
			}
			if strings.Contains(x.Detail, "Secret-pw-1") {
				t.Error("the detail carries the password")
			}
		})
	}
}

func TestADExpiry(t *testing.T) {
	const dn = "CN=Bob,CN=Users,DC=example,DC=org"
	bindData := func(data string) string {
		return "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data " + data + ", v4563"
	}
	in3days := time.Now().UTC().Add(72 * time.Hour)
	ft := strconv.FormatInt(in3days.Sub(time.Unix(0, 0)).Nanoseconds()/100+fileTimeUnixEpoch, 10)
	for _, tc := range []struct {
		name   string
		fake   fakeDir
		url    string
		state  ExpiryState
		source string
		kind   Kind
	}{
		{name: "expires", fake: fakeDir{entries: map[string]map[string]string{dn: {"userPrincipalName": "bob@example.org", "msDS-UserPasswordExpiryTimeComputed": ft, "pwdLastSet": "134410853425699840"}}},
			state: Expires, source: "msDS-UserPasswordExpiryTimeComputed"},
		{name: "expired: bind data 532", fake: fakeDir{bindCode: 49, bindMsg: bindData("532")}, state: Expired, source: "bind: AD data 532"},
		{name: "must change: bind data 773", fake: fakeDir{bindCode: 49, bindMsg: bindData("773")}, state: MustChange, source: "bind: AD data 773"},
		{name: "wrong password", fake: fakeDir{bindCode: 49, bindMsg: bindData("52e")}, kind: WrongCurrent},
		{name: "locked out", fake: fakeDir{bindCode: 49, bindMsg: bindData("775")}, kind: Locked},
		{name: "kpasswd with ldap=", url: "kpasswd", fake: fakeDir{entries: map[string]map[string]string{dn: {"userPrincipalName": "bob@EXAMPLE.ORG", "msDS-UserPasswordExpiryTimeComputed": "9223372036854775807"}}},
			state: Never, source: "msDS-UserPasswordExpiryTimeComputed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pki := newFakePKI(t)
			fake := tc.fake
			addr := fake.serve(t, pki.server)
			var b Backend = ad{}
			url := "ldaps://" + addr
			if tc.url == "kpasswd" {
				b, url = kpasswd{}, "kpasswd://127.0.0.1:1?realm=EXAMPLE.ORG&ldap=ldaps://"+addr
			}
			x, err := ReadExpiry(context.Background(), b, Request{Username: "bob@example.org", Current: "Secret-pw-1", URL: url, Roots: pki.roots})
			binds, _, others := fake.seen()
			if binds != 1 || len(others) != 0 {
				t.Errorf("server saw %d binds and %v; want one bind and nothing else", binds, others)
			}
			if tc.kind != "" {
				checkKind(t, err, tc.kind, "")
				return
			}
			if err != nil || x.State != tc.state || x.Source != tc.source {
				t.Fatalf("Expiry() = %+v, %v; want %s from %s", x, err, tc.state, tc.source)
			}
			if tc.state == Expires && x.At.Sub(in3days).Abs() > time.Second {
				t.Errorf("At = %v, want %v", x.At, in3days)
			}
		})
	}
}
