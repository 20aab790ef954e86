package provider

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

func TestParseKpasswdURL(t *testing.T) {
	for _, tc := range []struct {
		url, user          string
		server, kdc        string
		principal, inRealm string
	}{
		{"kpasswd://kdc.example.org", "bob@example.org", "kdc.example.org:464", "kdc.example.org:88", "bob", "EXAMPLE.ORG"},
		{"kpasswd://kdc.example.org:1464/?realm=CORP.EXAMPLE.ORG&kdc=other:1088", "bob@example.org", "kdc.example.org:1464", "other:1088", "bob", "CORP.EXAMPLE.ORG"},
		{"KPASSWD://[::1]?kdc=[::1]&realm=R", "bob", "[::1]:464", "[::1]:88", "bob", "R"},
		{"kpasswd://dc?realm=lower.case", "a.b@x@y.org", "dc:464", "dc:88", "a.b@x", "lower.case"},
	} {
		target, err := parseKpasswdURL(tc.url)
		if err != nil {
			t.Errorf("parseKpasswdURL(%q) = %v", tc.url, err)
			continue
		}
		if target.server != tc.server || target.kdc != tc.kdc {
			t.Errorf("parseKpasswdURL(%q) = %+v, want server %s kdc %s", tc.url, target, tc.server, tc.kdc)
		}
		name, realm, err := target.principal(tc.user)
		if tc.principal == "a.b@x" {
			// A user name with two @ is not a principal name.
			if err == nil {
				t.Errorf("principal(%q) = %s@%s, want an error", tc.user, name, realm)
			}
			continue
		}
		if err != nil || name != tc.principal || realm != tc.inRealm {
			t.Errorf("principal(%q) with %q = %q, %q, %v; want %q, %q", tc.user, tc.url, name, realm, err, tc.principal, tc.inRealm)
		}
	}
	for _, bad := range []string{
		"", "kdc.example.org", "http://kdc", "kpasswd://", "kpasswd://user@kdc", "kpasswd://kdc/path",
		"kpasswd://kdc#x", "kpasswd://kdc?realm=", "kpasswd://kdc?realm=A&realm=B", "kpasswd://kdc?realm=A B",
		"kpasswd://kdc?kdc=", "kpasswd://kdc?kdc=h:0", "kpasswd://kdc?kdc=h:99999", "kpasswd://kdc:x",
		"kpasswd://kdc?user=bob", "kpasswd://kdc?realm=%zz", "kpasswd://kdc\n",
	} {
		if _, err := parseKpasswdURL(bad); err == nil {
			t.Errorf("parseKpasswdURL(%q) accepted", bad)
		}
	}
	plain, _ := parseKpasswdURL("kpasswd://kdc")
	for _, user := range []string{"bob", "", "@example.org", "a/admin@example.org", "bo\x01b@example.org"} {
		if name, realm, err := plain.principal(user); err == nil {
			t.Errorf("principal(%q) = %s@%s, want an error", user, name, realm)
		}
	}
}

func TestKpasswdResult(t *testing.T) {
	secrets := []string{"OldPass1!", "NewPass2!"}
	krbErr := &messages.KRBError{ErrorCode: errorcode.KRB_AP_ERR_SKEW}
	for _, tc := range []struct {
		reply        kpasswdReply
		want         Kind
		rule, detail string
	}{
		{kpasswdReply{code: 0}, "", "", ""},
		{kpasswdReply{code: 3, result: []byte("Authentication error")}, WrongCurrent, "", "authentication error (3)"},
		{kpasswdReply{code: 4, result: []byte("Password too short, password must be at least 7 characters long.")}, Rejected, "too_short", "at least 7"},
		{kpasswdReply{code: 4, result: []byte("Password does not meet complexity requirements")}, Rejected, "", "complexity"},
		{kpasswdReply{code: 4, result: []byte("Password is already in password history. New password must not match any of your 24 previous passwords.")}, RecentlyUsed, "", "24 previous"},
		{kpasswdReply{code: 4, result: []byte("NewPass2! is too weak")}, Rejected, "too_weak", "*** is too weak"},
		{kpasswdReply{code: 4, result: adPolicyBlock(7, 24, 1, 1)}, Rejected, "", "at least 7 characters; three of upper case"},
		{kpasswdReply{code: 5, result: []byte("Not permitted to change password")}, Rejected, "", "access denied (5)"},
		{kpasswdReply{code: 1}, Rejected, "", "malformed"},
		{kpasswdReply{code: 2, result: []byte("Failed to set password")}, Rejected, "", "server error (2): Failed"},
		{kpasswdReply{code: 6}, Rejected, "", "version"},
		{kpasswdReply{code: 7}, Rejected, "", "initial ticket"},
		{kpasswdReply{code: 99}, Rejected, "", "result 99"},
		{kpasswdReply{code: 3, krbErr: krbErr}, WrongCurrent, "", "KRB_AP_ERR_SKEW"},
		{kpasswdReply{code: kpasswdNoResultCode, krbErr: krbErr}, Rejected, "", "the server refused the request, (37) KRB_AP_ERR_SKEW"},
	} {
		err := kpasswdResult(tc.reply, "bob@EXAMPLE.ORG", secrets)
		checkKind(t, err, tc.want, tc.detail)
		if e := (*Error)(nil); errors.As(err, &e) && e.Rule != tc.rule {
			t.Errorf("kpasswdResult(%d %q) = %v with rule %q, want %q", tc.reply.code, tc.reply.result, err, e.Rule, tc.rule)
		}
		if err != nil && strings.Contains(err.Error(), "NewPass2!") {
			t.Errorf("error carries the password: %v", err)
		}
	}
}

func adPolicyBlock(minLength, history, properties uint32, minAgeDays uint64) []byte {
	b := make([]byte, 30)
	binary.BigEndian.PutUint32(b[2:], minLength)
	binary.BigEndian.PutUint32(b[6:], history)
	binary.BigEndian.PutUint32(b[10:], properties)
	binary.BigEndian.PutUint64(b[14:], 42*86400*10_000_000)
	binary.BigEndian.PutUint64(b[22:], minAgeDays*86400*10_000_000)
	return b
}

func TestADPolicyText(t *testing.T) {
	if got, want := adPolicyText(adPolicyBlock(7, 24, 1, 1)), "the domain's rules: at least 7 characters; three of upper case, lower case, digits and symbols, and not the account's name; none of the last 24 passwords; at most one change every 1 day(s)"; got != want {
		t.Errorf("adPolicyText = %q, want %q", got, want)
	}
	if got := adPolicyText(adPolicyBlock(0, 0, 0, 0)); got != "the password does not meet the domain's rules" {
		t.Errorf("adPolicyText(nothing) = %q", got)
	}
}

func TestKDCError(t *testing.T) {
	for code, want := range map[int32]Kind{
		errorcode.KDC_ERR_PREAUTH_FAILED:      WrongCurrent,
		errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN: Rejected,
		errorcode.KDC_ERR_CLIENT_REVOKED:      Locked,
		errorcode.KRB_AP_ERR_SKEW:             Rejected,
		errorcode.KDC_ERR_WRONG_REALM:         Rejected,
		errorcode.KDC_ERR_ETYPE_NOSUPP:        Rejected,
	} {
		err := kdcError(messages.KRBError{ErrorCode: code, EText: "text with OldPass1!"}, "bob@EXAMPLE.ORG", []string{"OldPass1!"})
		checkKind(t, err, want, errorcode.Lookup(code))
		if strings.Contains(err.Error(), "OldPass1!") {
			t.Errorf("error carries the password: %v", err)
		}
	}
}

func TestParseKpasswdReplyMalformed(t *testing.T) {
	var key types.EncryptionKey
	for _, b := range [][]byte{
		nil, {0, 5, 0, 1, 0}, {0, 7, 0, 1, 0, 0, 0}, {0, 6, 0, 2, 0, 0}, {0, 6, 0, 1, 0, 9},
		{0, 8, 0, 1, 0, 0, 0x30, 0}, {0, 8, 0, 1, 0, 1, 0x30, 0},
	} {
		if r, err := parseKpasswdReply(b, key, key); err == nil {
			t.Errorf("parseKpasswdReply(%x) = %+v, want an error", b, r)
		}
	}
}

func TestKpasswdChange(t *testing.T) {
	for _, tc := range []struct {
		name        string
		fake        fakeKDC
		current     string
		timeout     time.Duration
		want        Kind
		detail      string
		sawKpasswd  bool
		closeServer bool
		closeKDC    bool
	}{
		{name: "ok", sawKpasswd: true},
		{name: "ok, KDC without pre-authentication", fake: fakeKDC{noPreauth: true}, sawKpasswd: true},
		{name: "ok, answer under the AP-REP's subkey", fake: fakeKDC{apRepSubkey: true}, sawKpasswd: true},
		{name: "wrong current password", current: "Wrong-1!", want: WrongCurrent, detail: "PREAUTH_FAILED"},
		{name: "wrong current password, no pre-authentication", fake: fakeKDC{noPreauth: true}, current: "Wrong-1!", want: WrongCurrent, detail: "does not decrypt"},
		{name: "disabled", fake: fakeKDC{asError: errorcode.KDC_ERR_CLIENT_REVOKED}, want: Locked},
		{name: "policy", fake: fakeKDC{code: 4, text: "Password too short, password must be at least 7 characters long."}, want: Rejected, detail: "at least 7", sawKpasswd: true},
		{name: "auth error", fake: fakeKDC{code: 3}, want: WrongCurrent, sawKpasswd: true},
		{name: "KRB-ERROR answer", fake: fakeKDC{code: 5, text: "denied", krbError: true}, want: Rejected, detail: "denied", sawKpasswd: true},
		{name: "connection lost after the request", fake: fakeKDC{dropKpasswd: true}, want: OutcomeUnknown, sawKpasswd: true},
		{name: "no answer to the request", fake: fakeKDC{hangKpasswd: true}, timeout: 2 * time.Second, want: OutcomeUnknown, detail: "after the password change was sent", sawKpasswd: true},
		{name: "garbage answer", fake: fakeKDC{garbage: true}, want: OutcomeUnknown, detail: "unreadable", sawKpasswd: true},
		{name: "kpasswd server closed", closeServer: true, want: Unreachable, detail: "cannot send"},
		{name: "KDC closed", closeKDC: true, want: Unreachable, detail: "no answer from the KDC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := tc.fake
			fake.realm, fake.user, fake.password = "EXAMPLE.ORG", "bob", "OldPass1!"
			kdc, server := fake.serve(t)
			if tc.closeServer {
				server = closedAddrForTest(t)
			}
			if tc.closeKDC {
				kdc = closedAddrForTest(t)
			}
			current := tc.current
			if current == "" {
				current = "OldPass1!"
			}
			timeout := 10 * time.Second
			if tc.timeout > 0 {
				timeout = tc.timeout
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			err := kpasswd{}.Change(ctx, Request{
				Username: "bob@example.org", Current: current, New: "NewPass2!",
				URL: "kpasswd://" + server + "?kdc=" + kdc,
			})
			checkKind(t, err, tc.want, tc.detail)
			if err != nil && (strings.Contains(err.Error(), "OldPass1!") || strings.Contains(err.Error(), "NewPass2!")) {
				t.Errorf("error carries a password: %v", err)
			}
			got := fake.seen()
			if got.kpasswd != tc.sawKpasswd {
				t.Fatalf("the kpasswd server saw a request: %v, want %v", got.kpasswd, tc.sawKpasswd)
			}
			if got.kpasswd && (got.version != 1 || got.newPassword != "NewPass2!" || got.sname != "kadmin/changepw") {
				t.Errorf("request version %d, new password %q, ticket for %q; want version 1 (change password), the new password, kadmin/changepw", got.version, got.newPassword, got.sname)
			}
		})
	}
}

func TestKpasswdChangeRefusesEmpty(t *testing.T) {
	checkKind(t, kpasswd{}.Change(context.Background(), Request{Username: "bob@example.org", New: "x", URL: "kpasswd://127.0.0.1:1"}), WrongCurrent, "")
	checkKind(t, kpasswd{}.Change(context.Background(), Request{Username: "bob@example.org", Current: "x", URL: "kpasswd://127.0.0.1:1"}), Rejected, "empty")
	checkKind(t, kpasswd{}.Change(context.Background(), Request{Username: "bob", Current: "x", New: "y", URL: "kpasswd://127.0.0.1:1"}), Unreachable, "realm")
}

// fakeKDC is a KDC and a kpasswd server for one principal, over TCP: it
// asks for encrypted-timestamp pre-authentication (unless noPreauth),
// issues a kadmin/changepw ticket (opaque: only the session key matters)
// and answers a change-password request with code and text.
type fakeKDC struct {
	realm, user, password string
	noPreauth             bool
	asError               int32
	code                  uint16
	text                  string
	krbError              bool
	apRepSubkey           bool
	dropKpasswd           bool
	hangKpasswd           bool
	garbage               bool

	st *fakeKDCState // set by serve
}

type fakeKDCState struct {
	mu         sync.Mutex
	sessionKey types.EncryptionKey
	got        fakeKDCSeen
	conns      sync.Map // net.Conn → nil
	wg         sync.WaitGroup
}

type fakeKDCSeen struct {
	kpasswd            bool
	version            uint16
	newPassword, sname string
}

// seen is what the kpasswd server received; it records a request before
// answering, so this is complete once Change has returned.
func (f *fakeKDC) seen() fakeKDCSeen {
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	return f.st.got
}

func (f *fakeKDC) userKey(t *testing.T) types.EncryptionKey {
	cname := types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: []string{f.user}}
	key, _, err := crypto.GetKeyFromPassword(f.password, cname, f.realm, etypeID.AES256_CTS_HMAC_SHA1_96, nil)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// serve starts the KDC and the kpasswd server on 127.0.0.1.
func (f *fakeKDC) serve(t *testing.T) (kdc, server string) {
	key := f.userKey(t)
	f.st = &fakeKDCState{}
	// Registered first, so it runs last: after both listeners and every
	// connection are closed.
	t.Cleanup(f.st.wg.Wait)
	listen := func(handle func(net.Conn, []byte)) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ln.Close()
			f.st.conns.Range(func(c, _ any) bool { c.(net.Conn).Close(); return true })
		})
		f.st.wg.Go(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				f.st.conns.Store(c, nil)
				f.st.wg.Go(func() {
					defer c.Close()
					msg, err := readFrame(c)
					if err != nil {
						return
					}
					handle(c, msg)
				})
			}
		})
		return ln.Addr().String()
	}
	kdc = listen(func(c net.Conn, msg []byte) { f.asExchange(t, c, msg, key) })
	server = listen(func(c net.Conn, msg []byte) { f.kpasswd(t, c, msg) })
	return kdc, server
}

func readFrame(c net.Conn) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	_, err := io.ReadFull(c, b)
	return b, err
}

func writeFrame(c net.Conn, b []byte) {
	_, _ = c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...))
}

func (f *fakeKDC) errorReply(t *testing.T, code int32, edata []byte) []byte {
	e := messages.NewKRBError(types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"kadmin", "changepw"}}, f.realm, code, "")
	e.EData = edata
	b, err := e.Marshal()
	if err != nil {
		t.Error(err)
	}
	return b
}

func (f *fakeKDC) asExchange(t *testing.T, c net.Conn, msg []byte, key types.EncryptionKey) {
	var req messages.ASReq
	if err := req.Unmarshal(msg); err != nil {
		t.Errorf("KDC: %v", err)
		return
	}
	if req.ReqBody.CName.PrincipalNameString() != f.user || req.ReqBody.Realm != f.realm {
		writeFrame(c, f.errorReply(t, errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, nil))
		return
	}
	var ts *types.PAData
	for i := range req.PAData {
		if req.PAData[i].PADataType == patype.PA_ENC_TIMESTAMP {
			ts = &req.PAData[i]
		}
	}
	switch {
	case ts == nil && !f.noPreauth:
		info, _ := asn1.Marshal(types.ETypeInfo2{{EType: etypeID.AES256_CTS_HMAC_SHA1_96, Salt: f.realm + f.user}})
		pas, _ := asn1.Marshal(types.PADataSequence{{PADataType: patype.PA_ETYPE_INFO2, PADataValue: info}})
		writeFrame(c, f.errorReply(t, errorcode.KDC_ERR_PREAUTH_REQUIRED, pas))
		return
	case ts != nil:
		var ed types.EncryptedData
		if ed.Unmarshal(ts.PADataValue) != nil {
			writeFrame(c, f.errorReply(t, errorcode.KDC_ERR_PREAUTH_FAILED, nil))
			return
		}
		if _, err := crypto.DecryptEncPart(ed, key, keyusage.AS_REQ_PA_ENC_TIMESTAMP); err != nil {
			writeFrame(c, f.errorReply(t, errorcode.KDC_ERR_PREAUTH_FAILED, nil))
			return
		}
	}
	if f.asError != 0 {
		writeFrame(c, f.errorReply(t, f.asError, nil))
		return
	}
	et, _ := crypto.GetEtype(etypeID.AES256_CTS_HMAC_SHA1_96)
	session, err := types.GenerateEncryptionKey(et)
	if err != nil {
		t.Error(err)
		return
	}
	f.st.mu.Lock()
	f.st.sessionKey = session
	f.st.mu.Unlock()
	now := time.Now().UTC().Truncate(time.Second)
	part := messages.EncKDCRepPart{
		Key: session, LastReqs: []messages.LastReq{{LRValue: now}}, Nonce: req.ReqBody.Nonce,
		Flags: types.NewKrbFlags(), AuthTime: now, EndTime: now.Add(5 * time.Minute),
		SRealm: f.realm, SName: req.ReqBody.SName,
	}
	pb, err := part.Marshal()
	if err != nil {
		t.Error(err)
		return
	}
	enc, err := crypto.GetEncryptedData(pb, key, keyusage.AS_REP_ENCPART, 1)
	if err != nil {
		t.Error(err)
		return
	}
	rep := messages.ASRep{KDCRepFields: messages.KDCRepFields{
		PVNO: iana.PVNO, MsgType: msgtype.KRB_AS_REP, CRealm: f.realm, CName: req.ReqBody.CName,
		Ticket: messages.Ticket{TktVNO: iana.PVNO, Realm: f.realm, SName: req.ReqBody.SName,
			EncPart: types.EncryptedData{EType: etypeID.AES256_CTS_HMAC_SHA1_96, KVNO: 1, Cipher: []byte("opaque ticket")}},
		EncPart: enc,
	}}
	b, err := rep.Marshal()
	if err != nil {
		t.Error(err)
		return
	}
	writeFrame(c, b)
}

func (f *fakeKDC) kpasswd(t *testing.T, c net.Conn, msg []byte) {
	f.st.mu.Lock()
	session := f.st.sessionKey
	f.st.mu.Unlock()
	if len(msg) < 6 {
		t.Errorf("kpasswd: short request")
		return
	}
	apLen := int(binary.BigEndian.Uint16(msg[4:]))
	var ap messages.APReq
	if err := ap.Unmarshal(msg[6 : 6+apLen]); err != nil {
		t.Errorf("kpasswd: AP-REQ: %v", err)
		return
	}
	if err := ap.DecryptAuthenticator(session); err != nil {
		t.Errorf("kpasswd: authenticator: %v", err)
		return
	}
	subkey := ap.Authenticator.SubKey
	var priv messages.KRBPriv
	if err := priv.Unmarshal(msg[6+apLen:]); err != nil {
		t.Errorf("kpasswd: KRB-PRIV: %v", err)
		return
	}
	if err := priv.DecryptEncPart(subkey); err != nil {
		t.Errorf("kpasswd: KRB-PRIV: %v", err)
		return
	}
	f.st.mu.Lock()
	f.st.got = fakeKDCSeen{kpasswd: true, version: binary.BigEndian.Uint16(msg[2:]),
		newPassword: string(priv.DecryptedEncPart.UserData), sname: ap.Ticket.SName.PrincipalNameString()}
	f.st.mu.Unlock()

	result := binary.BigEndian.AppendUint16(nil, f.code)
	result = append(result, f.text...)
	var apRep, body []byte
	switch {
	case f.dropKpasswd:
		return
	case f.hangKpasswd:
		_, _ = io.Copy(io.Discard, c)
		return
	case f.garbage:
		writeFrame(c, []byte("\x00\x09\x00\x01\x00\x00\x30\x00x"))
		return
	case f.krbError:
		body = f.errorReply(t, errorcode.KRB_ERR_GENERIC, result)
	default:
		key := subkey
		if f.apRepSubkey {
			et, _ := crypto.GetEtype(subkey.KeyType)
			key, _ = types.GenerateEncryptionKey(et)
		}
		apRep = f.apRep(t, session, key)
		reply := messages.NewKRBPriv(messages.EncKrbPrivPart{UserData: result, Timestamp: time.Now().UTC()})
		if err := reply.EncryptEncPart(key); err != nil {
			t.Error(err)
			return
		}
		var err error
		if body, err = reply.Marshal(); err != nil {
			t.Error(err)
			return
		}
	}
	out := binary.BigEndian.AppendUint16(nil, uint16(6+len(apRep)+len(body)))
	out = binary.BigEndian.AppendUint16(out, 1)
	out = binary.BigEndian.AppendUint16(out, uint16(len(apRep)))
	writeFrame(c, append(append(out, apRep...), body...))
}

// apRep is an AP-REP carrying subkey, encrypted with the session key.
func (f *fakeKDC) apRep(t *testing.T, session, subkey types.EncryptionKey) []byte {
	part, err := asn1.Marshal(messages.EncAPRepPart{CTime: time.Now().UTC().Truncate(time.Second), Subkey: subkey})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := crypto.GetEncryptedData(asn1tools.AddASNAppTag(part, asnAppTag.EncAPRepPart), session, keyusage.AP_REP_ENCPART, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := asn1.Marshal(messages.APRep{PVNO: iana.PVNO, MsgType: msgtype.KRB_AP_REP, EncPart: enc})
	if err != nil {
		t.Fatal(err)
	}
	return asn1tools.AddASNAppTag(b, asnAppTag.APREP)
}
