package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

func TestParseADURL(t *testing.T) {
	for _, tc := range []struct {
		url, user        string
		addr, host, base string
		implicitTLS      bool
		upn              string
	}{
		{"ldaps://dc.example.org", "bob@example.org", "dc.example.org:636", "dc.example.org", "", true, "bob@example.org"},
		{"ldap://127.0.0.1:1389", "bob@example.org", "127.0.0.1:1389", "127.0.0.1", "", false, "bob@example.org"},
		{"LDAPS://[::1]:1636/DC=corp,DC=example,DC=org", "bob@example.org", "[::1]:1636", "::1", "DC=corp,DC=example,DC=org", true, "bob@example.org"},
		{"ldaps://dc.example.org/OU=Staff,%20DC=x?upn=%n@CORP.EXAMPLE.ORG", "bob@example.org", "dc.example.org:636", "dc.example.org", "OU=Staff, DC=x", true, "bob@CORP.EXAMPLE.ORG"},
		{"ldaps://dc?upn=%u@EXAMPLE.ORG", "bob", "dc:636", "dc", "", true, "bob@EXAMPLE.ORG"},
		{"ldaps://dc?upn=%n%%x@%d", "a@b.c", "dc:636", "dc", "", true, "a%x@b.c"},
	} {
		target, err := parseADURL(tc.url)
		if err != nil {
			t.Errorf("parseADURL(%q) = %v", tc.url, err)
			continue
		}
		if target.addr != tc.addr || target.host != tc.host || target.base != tc.base || target.implicitTLS != tc.implicitTLS {
			t.Errorf("parseADURL(%q) = %+v, want addr %s host %s base %q implicitTLS %v", tc.url, target, tc.addr, tc.host, tc.base, tc.implicitTLS)
		}
		if upn, err := target.upn(tc.user); err != nil || upn != tc.upn {
			t.Errorf("upn(%q) with %q = %q, %v; want %q", tc.user, tc.url, upn, err, tc.upn)
		}
	}
	for _, bad := range []string{
		"", "dc.example.org", "http://dc", "ldapi:///", "ldap+insecure://dc", "ldaps://", "ldaps://:636",
		"ldaps://user@dc", "ldaps://dc/not a dn", "ldaps://dc#x", "ldaps://dc?upn=%x@a", "ldaps://dc?upn=%",
		"ldaps://dc?upn=nobody", "ldaps://dc?bind=x", "ldaps://dc?upn=%n@a&upn=%n@b", "ldaps://dc/%zz",
		"ldaps://dc\r\n",
	} {
		if _, err := parseADURL(bad); err == nil {
			t.Errorf("parseADURL(%q) accepted", bad)
		}
	}
	plain, _ := parseADURL("ldaps://dc")
	templ, _ := parseADURL("ldaps://dc?upn=%n@")
	for _, tc := range []struct {
		target adTarget
		user   string
	}{{plain, "bob"}, {plain, ""}, {plain, "bob@"}, {plain, "@example.org"}, {plain, "bo\nb@x"}, {templ, "bob@x"}} {
		if upn, err := tc.target.upn(tc.user); err == nil {
			t.Errorf("upn(%q) with %q = %q, want an error", tc.user, tc.target.upnTemplate, upn)
		}
	}
}

func TestADPassword(t *testing.T) {
	for pw, want := range map[string]string{
		"":     "\"\x00\"\x00",
		"Ab1!": "\"\x00A\x00b\x001\x00!\x00\"\x00",
		"é":    "\"\x00\xe9\x00\"\x00",
		"𝄞":    "\"\x00\x34\xd8\x1e\xdd\"\x00", // a surrogate pair
	} {
		if got := adPassword(pw); got != want {
			t.Errorf("adPassword(%q) = %q, want %q", pw, got, want)
		}
	}
}

func TestADChange(t *testing.T) {
	const (
		dn  = "CN=Bob,CN=Users,DC=example,DC=org"
		upn = "bob@example.org"
	)
	bob := fakeADEntry{dn: dn, upn: upn, sam: "bob"}
	// Windows' and Samba's diagnostic messages.
	const (
		winWrongOld = "00000056: AtrErr: DSID-03191083, #1:\n\t0: 00000056: DSID-03191083, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 9005a (unicodePwd)\n"
		winPolicy   = "0000052D: AtrErr: DSID-03191083, #1:\n\t0: 0000052D: DSID-03191083, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 9005a (unicodePwd)\n"
		sambaPrefix = "0000052D: Constraint violation - check_password_restrictions: "
		bindData    = "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data %s, v4563"
	)
	bindMsg := func(data string) string { return strings.Replace(bindData, "%s", data, 1) }
	for _, tc := range []struct {
		name      string
		fake      fakeAD
		url       string // after the address; default ""
		user      string // default upn
		startTLS  bool
		timeout   time.Duration
		want      Kind
		rule      string
		detail    string
		sawModify bool
		modifyDN  string // default dn
		bindDN    string // default upn
	}{
		{name: "ok", sawModify: true},
		{name: "ok over StartTLS", startTLS: true, sawModify: true},
		{name: "ok with a upn template and a base DN", url: "/DC=example,DC=org?upn=%n@EXAMPLE.ORG", user: "bob", bindDN: "bob@EXAMPLE.ORG", sawModify: true},
		{name: "found by sAMAccountName", fake: fakeAD{entries: []fakeADEntry{{dn: "CN=Other,DC=example,DC=org", sam: "bob"}}}, sawModify: true, modifyDN: "CN=Other,DC=example,DC=org"},
		{name: "the UPN match wins", fake: fakeAD{entries: []fakeADEntry{{dn: "CN=Other,DC=example,DC=org", sam: "bob"}, bob}}, sawModify: true},
		{name: "no account", fake: fakeAD{entries: []fakeADEntry{}}, want: Rejected, detail: "no account found"},
		{name: "two accounts by sAMAccountName", fake: fakeAD{entries: []fakeADEntry{{dn: "CN=A,DC=x", sam: "bob"}, {dn: "CN=B,DC=x", sam: "bob"}}}, want: Rejected, detail: "more than one"},
		{name: "no naming context", fake: fakeAD{noNamingContext: true}, want: Rejected, detail: "defaultNamingContext"},
		{name: "search refused", fake: fakeAD{searchCode: 50}, want: Rejected, detail: "Insufficient Access Rights"},

		{name: "bind: wrong password", fake: fakeAD{bindCode: 49, bindMsg: bindMsg("52e")}, want: WrongCurrent, detail: "data 52e"},
		{name: "bind: no sub-code", fake: fakeAD{bindCode: 49}, want: WrongCurrent},
		{name: "bind: locked out", fake: fakeAD{bindCode: 49, bindMsg: bindMsg("775")}, want: Locked, detail: "locked out"},
		{name: "bind: disabled", fake: fakeAD{bindCode: 49, bindMsg: bindMsg("533")}, want: Locked, detail: "disabled"},
		{name: "bind: account expired", fake: fakeAD{bindCode: 49, bindMsg: bindMsg("701")}, want: Locked, detail: "expired"},
		{name: "bind: password expired", fake: fakeAD{bindCode: 49, bindMsg: bindMsg("532")}, want: PasswordExpired, detail: "kpasswd"},
		{name: "bind: must change", fake: fakeAD{bindCode: 49, bindMsg: bindMsg("773")}, want: PasswordExpired, detail: "next logon"},
		{name: "bind: upper-case sub-code", fake: fakeAD{bindCode: 49, bindMsg: bindMsg("52E")}, want: WrongCurrent, detail: "data 52e"},
		{name: "bind: TLS required", fake: fakeAD{bindCode: 8, bindMsg: "BindSimple: Transport encryption required."}, want: Rejected, detail: "Transport encryption"},
		{name: "bind: busy", fake: fakeAD{bindCode: 51}, want: Unreachable},
		{name: "bind: connection lost", fake: fakeAD{dropBind: true}, want: Unreachable},

		{name: "Windows: wrong current password", fake: fakeAD{modifyCode: 19, modifyMsg: winWrongOld}, want: WrongCurrent, sawModify: true},
		{name: "Samba: wrong current password", fake: fakeAD{modifyCode: 19, modifyMsg: "00000056: Constraint violation - check_password_restrictions: The old password specified doesn't match!"}, want: WrongCurrent, sawModify: true},
		{name: "Samba text alone", fake: fakeAD{modifyCode: 19, modifyMsg: "The old password specified doesn't match!"}, want: WrongCurrent, sawModify: true},
		{name: "Windows: policy", fake: fakeAD{modifyCode: 19, modifyMsg: winPolicy}, want: Rejected, detail: "length, complexity, history or minimum age", sawModify: true},
		{name: "Windows 2003: policy as unwilling", fake: fakeAD{modifyCode: 53, modifyMsg: winPolicy}, want: Rejected, detail: "length, complexity, history or minimum age", sawModify: true},
		{name: "Samba: too short", fake: fakeAD{modifyCode: 19, modifyMsg: sambaPrefix + "the password is too short. It should be equal or longer than 7 characters!"}, want: Rejected, rule: "too_short", detail: "7 characters", sawModify: true},
		{name: "Samba: complexity", fake: fakeAD{modifyCode: 19, modifyMsg: sambaPrefix + "the password does not meet the complexity criteria!"}, want: Rejected, detail: "complexity criteria", sawModify: true},
		{name: "Samba: history", fake: fakeAD{modifyCode: 19, modifyMsg: sambaPrefix + "the password was already used (in history)!"}, want: RecentlyUsed, sawModify: true},
		{name: "Samba: minimum age", fake: fakeAD{modifyCode: 19, modifyMsg: sambaPrefix + "password is too young to change!"}, want: TooRecent, sawModify: true},
		{name: "Samba: may not change", fake: fakeAD{modifyCode: 19, modifyMsg: sambaPrefix + "password can't be changed on this account!"}, want: Locked, sawModify: true},
		{name: "access denied", fake: fakeAD{modifyCode: 50, modifyMsg: "00000005: SecErr: DSID-031A11E5, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0"}, want: Locked, sawModify: true},
		{name: "other constraint", fake: fakeAD{modifyCode: 19, modifyMsg: "something else"}, want: Rejected, sawModify: true},
		{name: "unwilling", fake: fakeAD{modifyCode: 53, modifyMsg: "0000001F: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0"}, want: Rejected, detail: "Unwilling", sawModify: true},
		{name: "busy", fake: fakeAD{modifyCode: 51}, want: Unreachable, sawModify: true},
		{name: "a message echoing the password", fake: fakeAD{modifyCode: 19, modifyMsg: winPolicy + " NewPass2!"}, want: Rejected, detail: "***", sawModify: true},
		{name: "connection lost after the modify", fake: fakeAD{dropModify: true}, want: OutcomeUnknown, sawModify: true},
		{name: "no answer to the modify", fake: fakeAD{hangModify: true}, timeout: 300 * time.Millisecond, want: OutcomeUnknown, detail: "was sent", sawModify: true},
		{name: "StartTLS refused", startTLS: true, fake: fakeAD{startTLSCode: 2}, want: Unreachable, detail: "StartTLS"},
		{name: "closed at once", fake: fakeAD{closeAtOnce: true}, want: Unreachable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pki := newFakePKI(t)
			fake := tc.fake
			fake.startTLS = tc.startTLS
			if fake.entries == nil {
				fake.entries = []fakeADEntry{bob}
			}
			addr := fake.serve(t, pki.server)
			scheme := "ldaps"
			if tc.startTLS {
				scheme = "ldap"
			}
			user := tc.user
			if user == "" {
				user = upn
			}
			timeout := 10 * time.Second
			if tc.timeout > 0 {
				timeout = tc.timeout
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			err := ad{}.Change(ctx, Request{
				Username: user, Current: "OldPass1!", New: "NewPass2!",
				URL: scheme + "://" + addr + tc.url, Roots: pki.roots,
			})
			checkKind(t, err, tc.want, tc.detail)
			if e := (*Error)(nil); tc.rule != "" && (!errors.As(err, &e) || e.Rule != tc.rule) {
				t.Errorf("Change() = %v, want rule %q", err, tc.rule)
			}
			if err != nil && (strings.Contains(err.Error(), "OldPass1!") || strings.Contains(err.Error(), "NewPass2!")) {
				t.Errorf("error carries a password: %v", err)
			}
			got := fake.seen()
			wantBind := tc.bindDN
			if wantBind == "" {
				wantBind = upn
			}
			if got.bind && (got.bindDN != wantBind || got.bindPW != "OldPass1!" || !got.tlsAtBind) {
				t.Errorf("bind as %q with %q (TLS %v), want %q with the current password over TLS", got.bindDN, got.bindPW, got.tlsAtBind, wantBind)
			}
			if got.modify != tc.sawModify {
				t.Fatalf("server saw a modify: %v, want %v", got.modify, tc.sawModify)
			}
			if !got.modify {
				return
			}
			wantDN := tc.modifyDN
			if wantDN == "" {
				wantDN = dn
			}
			want := []fakeADChange{
				{op: ldap.DeleteAttribute, attr: "unicodePwd", values: []string{adPassword("OldPass1!")}},
				{op: ldap.AddAttribute, attr: "unicodePwd", values: []string{adPassword("NewPass2!")}},
			}
			if got.modifyDN != wantDN || !equalChanges(got.changes, want) {
				t.Errorf("modify %q %+v, want %q %+v", got.modifyDN, got.changes, wantDN, want)
			}
			if !got.tlsAtModify {
				t.Error("the modify went over a connection without TLS")
			}
		})
	}
}

func TestADChangeSearch(t *testing.T) {
	pki := newFakePKI(t)
	fake := fakeAD{entries: []fakeADEntry{{dn: "CN=Bob,DC=example,DC=org", upn: "b(o)b*@example.org"}}}
	addr := fake.serve(t, pki.server)
	err := ad{}.Change(context.Background(), Request{Username: `b(o)b*@example.org`, Current: "OldPass1!", New: "NewPass2!", URL: "ldaps://" + addr, Roots: pki.roots})
	if err != nil {
		t.Fatal(err)
	}
	got := fake.seen()
	if !got.rootDSE || got.searchBase != "DC=example,DC=org" {
		t.Errorf("rootDSE read %v, search base %q; want the rootDSE's defaultNamingContext", got.rootDSE, got.searchBase)
	}
	const want = `(&(objectClass=user)(|(userPrincipalName=b\28o\29b\2a@example.org)(sAMAccountName=b\28o\29b\2a)))`
	if got.searchFilter != want {
		t.Errorf("filter %s, want %s", got.searchFilter, want)
	}
}

func TestADChangeRefusesUntrustedAndClosed(t *testing.T) {
	pki := newFakePKI(t)
	var fake fakeAD
	addr := fake.serve(t, pki.server)
	req := Request{Username: "bob@example.org", Current: "OldPass1!", New: "NewPass2!", URL: "ldaps://" + addr, Roots: x509.NewCertPool()}
	checkKind(t, ad{}.Change(context.Background(), req), Unreachable, "TLS")
	if fake.seen().bind {
		t.Error("credentials were sent to a server whose certificate is not trusted")
	}
	req.URL, req.Roots = "ldaps://"+closedAddrForTest(t), pki.roots
	checkKind(t, ad{}.Change(context.Background(), req), Unreachable, "cannot connect")

	for _, tc := range []struct {
		req  Request
		want Kind
		rule string
	}{
		{Request{Username: "bob@example.org", New: "NewPass2!", URL: "ldaps://127.0.0.1:1"}, WrongCurrent, ""},
		{Request{Username: "bob@example.org", Current: "OldPass1!", URL: "ldaps://127.0.0.1:1"}, Rejected, "empty"},
		{Request{Username: "bob@example.org", Current: "OldPass1!", New: "\xff", URL: "ldaps://127.0.0.1:1"}, Rejected, "invalid_utf8"},
		{Request{Username: "bob", Current: "OldPass1!", New: "NewPass2!", URL: "ldaps://127.0.0.1:1"}, Unreachable, ""},
		{Request{Username: "bob@example.org", Current: "OldPass1!", New: "NewPass2!", URL: "ldap+insecure://127.0.0.1:1"}, Unreachable, ""},
	} {
		err := ad{}.Change(context.Background(), tc.req)
		checkKind(t, err, tc.want, "")
		if e := (*Error)(nil); errors.As(err, &e) && e.Rule != tc.rule {
			t.Errorf("Change(%+v) rule %q, want %q", tc.req, e.Rule, tc.rule)
		}
	}
}

func TestADWinCodes(t *testing.T) {
	codes := adWinCodes("0000052D: AtrErr: DSID-03191083, #1:\n\t0: 00000056: DSID-03191083, problem 1005, data 0")
	if !codes[0x52d] || !codes[0x56] || len(codes) != 2 {
		t.Errorf("adWinCodes = %v, want 0x52d and 0x56 (and not the DSID)", codes)
	}
}

func closedAddrForTest(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// fakeAD answers one connection the way a domain controller would:
// optional StartTLS, a simple bind, a rootDSE read, the account search and
// the unicodePwd modify.
type fakeAD struct {
	startTLS              bool
	startTLSCode          uint16
	bindCode              uint16
	bindMsg               string
	noNamingContext       bool
	entries               []fakeADEntry
	searchCode            uint16
	modifyCode            uint16
	modifyMsg             string
	closeAtOnce, dropBind bool
	dropModify            bool
	hangModify            bool

	st *fakeADState
}

type fakeADEntry struct{ dn, upn, sam string }

type fakeADChange struct {
	op     int64
	attr   string
	values []string
}

type fakeADState struct {
	mu   sync.Mutex
	got  fakeADSeen
	done chan struct{}
}

type fakeADSeen struct {
	bind, tlsAtBind, rootDSE, modify, tlsAtModify bool
	bindDN, bindPW, searchBase, searchFilter      string
	modifyDN                                      string
	changes                                       []fakeADChange
}

func (f *fakeAD) seen() fakeADSeen {
	<-f.st.done
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	return f.st.got
}

func (f *fakeAD) record(fn func(*fakeADSeen)) {
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	fn(&f.st.got)
}

// serve accepts one connection on 127.0.0.1 and returns the address.
func (f *fakeAD) serve(t *testing.T, cfg *tls.Config) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.st = &fakeADState{done: make(chan struct{})}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); ln.Close() })
	go func() {
		defer close(f.st.done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		go func() { <-stop; c.Close() }()
		if f.closeAtOnce {
			return
		}
		isTLS := !f.startTLS
		if isTLS {
			c = tls.Server(c, cfg)
		}
		for {
			p, err := ber.ReadPacket(c)
			if err != nil || len(p.Children) < 2 {
				return
			}
			id, _ := p.Children[0].Value.(int64)
			op := p.Children[1]
			switch op.Tag {
			case ldap.ApplicationBindRequest:
				f.record(func(s *fakeADSeen) {
					s.bind, s.tlsAtBind = true, isTLS
					if len(op.Children) >= 3 {
						s.bindDN = ber.DecodeString(op.Children[1].Data.Bytes())
						s.bindPW = ber.DecodeString(op.Children[2].Data.Bytes())
					}
				})
				if f.dropBind {
					return
				}
				writeLDAP(c, id, ldap.ApplicationBindResponse, f.bindCode, f.bindMsg)
			case ldap.ApplicationExtendedRequest:
				writeLDAP(c, id, ldap.ApplicationExtendedResponse, f.startTLSCode, "")
				if f.startTLSCode == 0 {
					c, isTLS = tls.Server(c, cfg), true
				}
			case ldap.ApplicationSearchRequest:
				f.search(c, id, op)
			case ldap.ApplicationModifyRequest:
				f.recordModify(op, isTLS)
				switch {
				case f.dropModify:
					return
				case f.hangModify:
					_, _ = io.Copy(io.Discard, c) // until the client gives up
					return
				}
				writeLDAP(c, id, ldap.ApplicationModifyResponse, f.modifyCode, f.modifyMsg)
			case ldap.ApplicationUnbindRequest:
				return
			}
		}
	}()
	return ln.Addr().String()
}

func (f *fakeAD) search(c net.Conn, id int64, op *ber.Packet) {
	if len(op.Children) < 7 {
		writeLDAP(c, id, ldap.ApplicationSearchResultDone, 2, "bad search")
		return
	}
	base := ber.DecodeString(op.Children[0].Data.Bytes())
	if base == "" {
		f.record(func(s *fakeADSeen) { s.rootDSE = true })
		if !f.noNamingContext {
			writeEntry(c, id, "", map[string]string{"defaultNamingContext": "DC=example,DC=org"})
		}
		writeLDAP(c, id, ldap.ApplicationSearchResultDone, 0, "")
		return
	}
	filter, _ := ldap.DecompileFilter(op.Children[6])
	f.record(func(s *fakeADSeen) { s.searchBase, s.searchFilter = base, filter })
	if f.searchCode == 0 {
		for _, e := range f.entries {
			attrs := map[string]string{}
			if e.upn != "" {
				attrs["userPrincipalName"] = e.upn
			}
			if e.sam != "" {
				attrs["sAMAccountName"] = e.sam
			}
			writeEntry(c, id, e.dn, attrs)
		}
	}
	writeLDAP(c, id, ldap.ApplicationSearchResultDone, f.searchCode, "")
}

func (f *fakeAD) recordModify(op *ber.Packet, isTLS bool) {
	f.record(func(s *fakeADSeen) {
		s.modify, s.tlsAtModify = true, isTLS
		if len(op.Children) < 2 {
			return
		}
		s.modifyDN = ber.DecodeString(op.Children[0].Data.Bytes())
		for _, ch := range op.Children[1].Children {
			if len(ch.Children) < 2 || len(ch.Children[1].Children) < 2 {
				continue
			}
			kind, _ := ch.Children[0].Value.(int64)
			change := fakeADChange{op: kind, attr: ber.DecodeString(ch.Children[1].Children[0].Data.Bytes())}
			for _, v := range ch.Children[1].Children[1].Children {
				change.values = append(change.values, ber.DecodeString(v.Data.Bytes()))
			}
			s.changes = append(s.changes, change)
		}
	})
}

func writeEntry(c net.Conn, id int64, dn string, attrs map[string]string) {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Response")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "MessageID"))
	e := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationSearchResultEntry, nil, "Entry")
	e.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, "DN"))
	list := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Attributes")
	for k, v := range attrs {
		a := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Attribute")
		a.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, k, "Type"))
		vals := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "Values")
		vals.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, v, "Value"))
		a.AppendChild(vals)
		list.AppendChild(a)
	}
	e.AppendChild(list)
	p.AppendChild(e)
	_, _ = c.Write(p.Bytes())
}

func equalChanges(a, b []fakeADChange) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].op != b[i].op || a[i].attr != b[i].attr || strings.Join(a[i].values, "\x00") != strings.Join(b[i].values, "\x00") {
			return false
		}
	}
	return true
}
