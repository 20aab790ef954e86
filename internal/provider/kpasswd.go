package provider

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/krberror"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/credsync/credsync/internal/policy"
)

// kpasswd changes a password with the Kerberos change-password protocol
// (RFC 3244), which Active Directory, Samba AD, MIT and Heimdal serve on
// port 464: an AS exchange with the current password for a
// kadmin/changepw ticket, then the new password in a KRB-PRIV message.
// Unlike an LDAP bind, this works while the password has expired or must be
// changed at the next logon.
//
// Request.URL is
//
//	kpasswd://HOST[:PORT][?realm=REALM][&kdc=KDC-HOST[:PORT]][&ldap=LDAP-URL]
//
// HOST is the kpasswd server (port 464 by default); kdc= the KDC for the AS
// exchange (default: HOST, port 88); ldap= the domain's directory, as an
// ad back-end URL (ldaps://dc.example.org[/BASE-DN]), from which the
// password's expiry is read (ExpiryReader; the change never uses it). The principal is the user name's local
// part (before the last @) in realm= (case-sensitive, upper case by
// convention), or, without realm=, in the user name's domain in upper case
// (bob@example.org → bob@EXAMPLE.ORG). Example:
//
//	kpasswd://dc.example.org?realm=CORP.EXAMPLE.ORG
//
// Everything is configured from the URL: no krb5.conf, no DNS SRV lookups.
// It speaks TCP only (RFC 4120 7.2.2 framing), so that a request cannot be
// lost silently and a lost answer is known to be lost.
//
// gokrb5 builds, encrypts and checks the messages; the exchanges are done
// here rather than with its client.ChangePasswd, which sends a
// set-password request (see changePasswordRequest), has no context, reports
// result codes only as text and cannot tell a request that never left from
// one whose answer was lost.
type kpasswd struct{}

func (kpasswd) Info() Info {
	return Info{
		Name:         "kpasswd",
		Description:  "Kerberos password change (RFC 3244: Active Directory, Samba AD, MIT, Heimdal); URL kpasswd://kdc.example.org[:464]?realm=EXAMPLE.ORG[&kdc=host:88][&ldap=ldaps://dc.example.org]",
		NeedsURL:     true,
		NeedsCurrent: true,
		Expiry:       true,
	}
}

const (
	// kpasswdTimeout bounds a change when the context has no deadline.
	kpasswdTimeout = 60 * time.Second
	// maxKerberosReply bounds a reply; tickets with large PACs stay far below.
	maxKerberosReply = 1 << 20
)

func (kpasswd) Change(ctx context.Context, r Request) error {
	t, err := parseKpasswdURL(r.URL)
	if err != nil {
		return &Error{Kind: Unreachable, Detail: "kpasswd: " + err.Error()}
	}
	name, realm, err := t.principal(r.Username)
	if err != nil {
		return &Error{Kind: Unreachable, Detail: "kpasswd: " + err.Error()}
	}
	switch {
	case r.Current == "":
		return &Error{Kind: WrongCurrent, Detail: "kpasswd: the current password is empty"}
	case r.New == "":
		return &Error{Kind: Rejected, Rule: policy.RuleEmpty, Detail: "kpasswd: the new password is empty"}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, kpasswdTimeout)
		defer cancel()
	}
	secrets := []string{r.Current, r.New}
	cname := types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: []string{name}}
	principal := name + "@" + realm

	asRep, err := kerberosLogin(ctx, t.kdc, cname, realm, r.Current, secrets)
	if err != nil {
		return err
	}
	b, subkey, err := changePasswordRequest(cname, realm, r.New, asRep.Ticket, asRep.DecryptedEncPart.Key)
	if err != nil {
		return &Error{Kind: Unreachable, Detail: "kpasswd: cannot build the request", Err: redactErr(err, secrets)}
	}
	raw, sent, err := kerberosExchange(ctx, t.server, b)
	if err != nil {
		if sent {
			return &Error{Kind: OutcomeUnknown, Detail: "kpasswd: the connection to " + t.server + " failed after the password change was sent", Err: redactErr(err, secrets)}
		}
		return &Error{Kind: Unreachable, Detail: "kpasswd: cannot send the password change to " + t.server, Err: redactErr(err, secrets)}
	}
	reply, err := parseKpasswdReply(raw, subkey, asRep.DecryptedEncPart.Key)
	if err != nil {
		return &Error{Kind: OutcomeUnknown, Detail: "kpasswd: unreadable answer from " + t.server, Err: redactErr(err, secrets)}
	}
	return kpasswdResult(reply, principal, secrets)
}

// kerberosLogin gets a kadmin/changepw ticket with the current password
// (RFC 3244 section 2): an AS exchange, with encrypted-timestamp
// pre-authentication when the KDC asks for it. Nothing changes at the
// provider, so every failure is final and none is OutcomeUnknown.
func kerberosLogin(ctx context.Context, kdc string, cname types.PrincipalName, realm, password string, secrets []string) (messages.ASRep, error) {
	cfg := config.New() // in memory: never /etc/krb5.conf or DNS
	cfg.LibDefaults.DefaultRealm = realm
	cfg.LibDefaults.TicketLifetime = 5 * time.Minute // as MIT's kpasswd
	req, err := messages.NewASReqForChgPasswd(realm, cfg, cname)
	if err != nil {
		return messages.ASRep{}, &Error{Kind: Unreachable, Detail: "kpasswd: cannot build the AS request", Err: err}
	}
	principal := cname.PrincipalNameString() + "@" + realm
	for attempt := 0; ; attempt++ {
		b, err := req.Marshal()
		if err != nil {
			return messages.ASRep{}, &Error{Kind: Unreachable, Detail: "kpasswd: cannot build the AS request", Err: err}
		}
		raw, _, err := kerberosExchange(ctx, kdc, b)
		if err != nil {
			return messages.ASRep{}, &Error{Kind: Unreachable, Detail: "kpasswd: no answer from the KDC " + kdc, Err: redactErr(err, secrets)}
		}
		var krbErr messages.KRBError
		if krbErr.Unmarshal(raw) == nil {
			if krbErr.ErrorCode == errorcode.KDC_ERR_PREAUTH_REQUIRED && attempt == 0 {
				if err := addEncryptedTimestamp(&req, krbErr, cname, realm, password); err != nil {
					return messages.ASRep{}, &Error{Kind: Rejected, Detail: "kpasswd: cannot pre-authenticate to the KDC " + kdc, Err: redactErr(err, secrets)}
				}
				continue
			}
			return messages.ASRep{}, kdcError(krbErr, principal, secrets)
		}
		var rep messages.ASRep
		if err := rep.Unmarshal(raw); err != nil {
			return messages.ASRep{}, &Error{Kind: Unreachable, Detail: "kpasswd: unreadable answer from the KDC " + kdc, Err: err}
		}
		creds := credentials.New(cname.PrincipalNameString(), realm).WithPassword(password)
		if ok, err := rep.Verify(cfg, creds, req); !ok {
			var ke krberror.Krberror
			if errors.As(err, &ke) && ke.RootCause == krberror.DecryptingError {
				// A KDC that does not require pre-authentication answers
				// anyone; only the current password decrypts its answer.
				return messages.ASRep{}, &Error{Kind: WrongCurrent, Detail: "kpasswd: the KDC's answer does not decrypt with the current password of " + principal}
			}
			return messages.ASRep{}, &Error{Kind: Rejected, Detail: "kpasswd: the KDC's answer failed verification", Err: redactErr(err, secrets)}
		}
		return rep, nil
	}
}

// addEncryptedTimestamp adds PA-ENC-TIMESTAMP to req, with the key the KDC
// named (PA-ETYPE-INFO2: encryption type, salt) in its
// KDC_ERR_PREAUTH_REQUIRED.
func addEncryptedTimestamp(req *messages.ASReq, krbErr messages.KRBError, cname types.PrincipalName, realm, password string) error {
	var pas types.PADataSequence
	if err := pas.Unmarshal(krbErr.EData); err != nil {
		return fmt.Errorf("unreadable pre-authentication hints: %w", err)
	}
	etype := int32(0)
	for _, pa := range pas {
		switch pa.PADataType {
		case patype.PA_ETYPE_INFO2:
			if info, err := pa.GetETypeInfo2(); err == nil && len(info) > 0 {
				etype = info[0].EType
			}
		case patype.PA_ETYPE_INFO:
			if info, err := pa.GetETypeInfo(); err == nil && len(info) > 0 && etype == 0 {
				etype = info[0].EType
			}
		}
	}
	if etype == 0 {
		return errors.New("the KDC named no encryption type")
	}
	key, _, err := crypto.GetKeyFromPassword(password, cname, realm, etype, pas)
	if err != nil {
		return err
	}
	ts, err := types.GetPAEncTSEncAsnMarshalled()
	if err != nil {
		return err
	}
	enc, err := crypto.GetEncryptedData(ts, key, keyusage.AS_REQ_PA_ENC_TIMESTAMP, 0)
	if err != nil {
		return err
	}
	b, err := enc.Marshal()
	if err != nil {
		return err
	}
	req.PAData = append(req.PAData, types.PAData{PADataType: patype.PA_ENC_TIMESTAMP, PADataValue: b})
	return nil
}

// changePasswordRequest builds an RFC 3244 request with protocol version 1,
// the change-password form that MIT's kpasswd and Windows use: an AP-REQ
// for the kadmin/changepw ticket, then a KRB-PRIV whose user data is the new
// password, encrypted with the authenticator's subkey (returned for the
// answer). Version 0xff80, which gokrb5's kadmin.ChangePasswdMsg builds,
// names a target principal and so is a set-password request: Samba answers
// it with "Not permitted to change password" (access denied) for a user
// changing their own password.
func changePasswordRequest(cname types.PrincipalName, realm, newPassword string, tkt messages.Ticket, sessionKey types.EncryptionKey) ([]byte, types.EncryptionKey, error) {
	auth, err := types.NewAuthenticator(realm, cname)
	if err != nil {
		return nil, types.EncryptionKey{}, err
	}
	et, err := crypto.GetEtype(sessionKey.KeyType)
	if err != nil {
		return nil, types.EncryptionKey{}, err
	}
	if err := auth.GenerateSeqNumberAndSubKey(et.GetETypeID(), et.GetKeyByteSize()); err != nil {
		return nil, types.EncryptionKey{}, err
	}
	apReq, err := messages.NewAPReq(tkt, sessionKey, auth)
	if err != nil {
		return nil, types.EncryptionKey{}, err
	}
	ab, err := apReq.Marshal()
	if err != nil {
		return nil, types.EncryptionKey{}, err
	}
	priv := messages.NewKRBPriv(messages.EncKrbPrivPart{
		UserData:       []byte(newPassword),
		Timestamp:      auth.CTime,
		Usec:           auth.Cusec,
		SequenceNumber: auth.SeqNumber,
	})
	if err := priv.EncryptEncPart(auth.SubKey); err != nil {
		return nil, types.EncryptionKey{}, err
	}
	pb, err := priv.Marshal()
	if err != nil {
		return nil, types.EncryptionKey{}, err
	}
	total := 6 + len(ab) + len(pb)
	if total > 0xffff {
		return nil, types.EncryptionKey{}, fmt.Errorf("request too long (%d bytes)", total)
	}
	b := make([]byte, 6, total)
	binary.BigEndian.PutUint16(b[0:], uint16(total))
	binary.BigEndian.PutUint16(b[2:], 1) // protocol version: change password
	binary.BigEndian.PutUint16(b[4:], uint16(len(ab)))
	return append(append(b, ab...), pb...), auth.SubKey, nil
}

// kdcError maps a KRB-ERROR from the AS exchange: nothing has changed.
func kdcError(e messages.KRBError, principal string, secrets []string) error {
	text := errorcode.Lookup(e.ErrorCode) + describe(e.EText, secrets)
	switch e.ErrorCode {
	case errorcode.KDC_ERR_PREAUTH_FAILED:
		return &Error{Kind: WrongCurrent, Detail: "kpasswd: the KDC refused the current password of " + principal + ": " + text}
	case errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN:
		return &Error{Kind: Rejected, Detail: "kpasswd: the KDC does not know " + principal + " (check the realm and the user name): " + text}
	case errorcode.KDC_ERR_CLIENT_REVOKED:
		return &Error{Kind: Locked, Detail: "kpasswd: the account " + principal + " is disabled or locked out: " + text}
	case errorcode.KRB_AP_ERR_SKEW:
		return &Error{Kind: Rejected, Detail: "kpasswd: this computer's clock differs too much from the KDC's (Kerberos allows 5 minutes): " + text}
	case errorcode.KDC_ERR_WRONG_REALM:
		return &Error{Kind: Rejected, Detail: "kpasswd: the KDC does not serve the realm of " + principal + ": " + text}
	}
	return &Error{Kind: Rejected, Detail: "kpasswd: the KDC refused the request for " + principal + ": " + text}
}

// kerberosExchange sends one message over TCP with RFC 4120 7.2.2 framing
// (a 4-byte big-endian length) and returns the answer. sent reports whether
// any byte of the message was written: a failure after that may have come
// after the server acted on it.
func kerberosExchange(ctx context.Context, addr string, msg []byte) (reply []byte, sent bool, err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	frame := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(msg)), uint32(len(msg)))
	n, err := conn.Write(append(frame, msg...))
	if err != nil {
		return nil, n > 0, ctxErr(ctx, err)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return nil, true, ctxErr(ctx, err)
	}
	size := binary.BigEndian.Uint32(hdr[:])
	if size == 0 || size > maxKerberosReply {
		return nil, true, fmt.Errorf("bad answer length %d", size)
	}
	reply = make([]byte, size)
	if _, err := io.ReadFull(conn, reply); err != nil {
		return nil, true, ctxErr(ctx, err)
	}
	return reply, true, nil
}

// kpasswdReply is a decoded RFC 3244 answer.
type kpasswdReply struct {
	code   uint16
	result []byte
	// krbErr is set when the server answered with a KRB-ERROR (it did not
	// accept the request); code and result then come from its e-data, if
	// any.
	krbErr *messages.KRBError
}

// parseKpasswdReply decodes an answer: length, version 1, AP-REP length,
// then AP-REP and KRB-PRIV, or no AP-REP and a KRB-ERROR. The KRB-PRIV is
// encrypted with the subkey of the request's authenticator or, from some
// servers, the AP-REP's subkey (found with the ticket's session key).
func parseKpasswdReply(b []byte, subkey, sessionKey types.EncryptionKey) (kpasswdReply, error) {
	if len(b) < 6 {
		return kpasswdReply{}, fmt.Errorf("answer too short (%d bytes)", len(b))
	}
	if n := int(binary.BigEndian.Uint16(b[0:2])); n != len(b) {
		return kpasswdReply{}, fmt.Errorf("answer length %d, got %d bytes", n, len(b))
	}
	if v := binary.BigEndian.Uint16(b[2:4]); v != 1 {
		return kpasswdReply{}, fmt.Errorf("protocol version %#x, want 1", v)
	}
	apLen := int(binary.BigEndian.Uint16(b[4:6]))
	if 6+apLen > len(b) {
		return kpasswdReply{}, fmt.Errorf("AP-REP length %d beyond the answer", apLen)
	}
	if apLen == 0 {
		var ke messages.KRBError
		if err := ke.Unmarshal(b[6:]); err != nil {
			return kpasswdReply{}, err
		}
		r := kpasswdReply{code: kpasswdNoResultCode, krbErr: &ke}
		if len(ke.EData) >= 2 {
			r.code, r.result = binary.BigEndian.Uint16(ke.EData), ke.EData[2:]
		}
		return r, nil
	}
	var priv messages.KRBPriv
	if err := priv.Unmarshal(b[6+apLen:]); err != nil {
		return kpasswdReply{}, err
	}
	if err := priv.DecryptEncPart(subkey); err != nil {
		key, kerr := apRepSubkey(b[6:6+apLen], sessionKey)
		if kerr != nil {
			return kpasswdReply{}, err
		}
		if err := priv.DecryptEncPart(key); err != nil {
			return kpasswdReply{}, err
		}
	}
	data := priv.DecryptedEncPart.UserData
	if len(data) < 2 {
		return kpasswdReply{}, errors.New("no result code")
	}
	return kpasswdReply{code: binary.BigEndian.Uint16(data), result: data[2:]}, nil
}

func apRepSubkey(b []byte, sessionKey types.EncryptionKey) (types.EncryptionKey, error) {
	var rep messages.APRep
	if err := rep.Unmarshal(b); err != nil {
		return types.EncryptionKey{}, err
	}
	plain, err := crypto.DecryptEncPart(rep.EncPart, sessionKey, keyusage.AP_REP_ENCPART)
	if err != nil {
		return types.EncryptionKey{}, err
	}
	var part messages.EncAPRepPart
	if err := part.Unmarshal(plain); err != nil {
		return types.EncryptionKey{}, err
	}
	if len(part.Subkey.KeyValue) == 0 {
		return types.EncryptionKey{}, errors.New("no subkey in the AP-REP")
	}
	return part.Subkey, nil
}

// RFC 3244 result codes.
const (
	kpasswdSuccess           = 0
	kpasswdMalformed         = 1
	kpasswdHardError         = 2
	kpasswdAuthError         = 3
	kpasswdSoftError         = 4
	kpasswdAccessDenied      = 5
	kpasswdBadVersion        = 6
	kpasswdInitialFlagNeeded = 7
	// kpasswdNoResultCode marks a KRB-ERROR answer without a result code.
	kpasswdNoResultCode = 0xffff
)

var kpasswdCodeNames = map[uint16]string{
	kpasswdMalformed:         "malformed request",
	kpasswdHardError:         "server error",
	kpasswdAuthError:         "authentication error",
	kpasswdSoftError:         "password refused",
	kpasswdAccessDenied:      "access denied",
	kpasswdBadVersion:        "protocol version not supported",
	kpasswdInitialFlagNeeded: "initial ticket needed",
}

// kpasswdResult maps the server's result code and text.
func kpasswdResult(r kpasswdReply, principal string, secrets []string) error {
	if r.code == kpasswdSuccess && r.krbErr == nil {
		return nil
	}
	text := kpasswdText(r.result, secrets)
	name, ok := kpasswdCodeNames[r.code]
	if !ok {
		name = "result " + strconv.Itoa(int(r.code))
	}
	detail := "kpasswd: " + name + " (" + strconv.Itoa(int(r.code)) + ")"
	if r.code == kpasswdNoResultCode {
		detail = "kpasswd: the server refused the request"
	}
	if r.krbErr != nil {
		detail += ", " + errorcode.Lookup(r.krbErr.ErrorCode) + describe(r.krbErr.EText, secrets)
	}
	if text != "" {
		detail += ": " + text
	}
	switch r.code {
	case kpasswdAuthError:
		return &Error{Kind: WrongCurrent, Detail: detail}
	case kpasswdSoftError:
		if isADPolicy(r.result) {
			// The domain's rules, not the broken one.
			return &Error{Kind: Rejected, Detail: detail}
		}
		if strings.Contains(strings.ToLower(text), "history") {
			return &Error{Kind: RecentlyUsed, Detail: detail}
		}
		return &Error{Kind: Rejected, Rule: policy.RuleFromMessage(text), Detail: detail}
	case kpasswdAccessDenied:
		return &Error{Kind: Rejected, Detail: detail + " (" + principal + " may not change its password here)"}
	}
	return &Error{Kind: Rejected, Detail: detail}
}

// kpasswdText is the server's result string for people: Active Directory
// sends a binary policy block (MS-KILE 2.2.9, 30 bytes from two zero
// bytes) instead of text on a soft error.
func kpasswdText(b []byte, secrets []string) string {
	if isADPolicy(b) {
		return adPolicyText(b)
	}
	return scrubText(string(b), secrets...)
}

func isADPolicy(b []byte) bool { return len(b) == 30 && b[0] == 0 && b[1] == 0 }

// adPolicyText describes an AD_POLICY_INFO block: minimum length, history
// length, properties (1 = complexity), maximum and minimum age in 100 ns
// units, all big-endian.
func adPolicyText(b []byte) string {
	minLength := binary.BigEndian.Uint32(b[2:])
	history := binary.BigEndian.Uint32(b[6:])
	properties := binary.BigEndian.Uint32(b[10:])
	minAge := binary.BigEndian.Uint64(b[22:])
	rules := []string{}
	if minLength > 0 {
		rules = append(rules, fmt.Sprintf("at least %d characters", minLength))
	}
	if properties&1 != 0 {
		rules = append(rules, "three of upper case, lower case, digits and symbols, and not the account's name")
	}
	if history > 0 {
		rules = append(rules, fmt.Sprintf("none of the last %d passwords", history))
	}
	if days := minAge / (10_000_000 * 86400); days > 0 {
		rules = append(rules, fmt.Sprintf("at most one change every %d day(s)", days))
	}
	if len(rules) == 0 {
		return "the password does not meet the domain's rules"
	}
	return "the domain's rules: " + strings.Join(rules, "; ")
}

// kpasswdTarget is a parsed back-end URL.
type kpasswdTarget struct {
	server string // kpasswd host:port
	kdc    string // KDC host:port
	realm  string // "" = the user name's domain in upper case
	// directory is ldap=, the domain's LDAP URL for the expiry; nil when
	// not given.
	directory *adTarget
}

func parseKpasswdURL(raw string) (kpasswdTarget, error) {
	if raw == "" {
		return kpasswdTarget{}, errors.New("no URL (kpasswd://kdc.example.org?realm=EXAMPLE.ORG)")
	}
	if strings.IndexFunc(raw, unicode.IsControl) >= 0 {
		return kpasswdTarget{}, errors.New("the URL contains control characters")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return kpasswdTarget{}, err
	}
	if !strings.EqualFold(u.Scheme, "kpasswd") {
		return kpasswdTarget{}, fmt.Errorf("unsupported scheme %q (use kpasswd://)", u.Scheme)
	}
	if u.User != nil || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" || u.Opaque != "" {
		return kpasswdTarget{}, errors.New("the URL must be kpasswd://HOST[:PORT][?realm=REALM][&kdc=HOST[:PORT]]")
	}
	server, err := hostPort(u.Host, "464")
	if err != nil {
		return kpasswdTarget{}, err
	}
	t := kpasswdTarget{server: server, kdc: net.JoinHostPort(u.Hostname(), "88")}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return kpasswdTarget{}, fmt.Errorf("bad URL parameters: %w", err)
	}
	for k, v := range q {
		if len(v) != 1 {
			return kpasswdTarget{}, fmt.Errorf("URL parameter %q given %d times", k, len(v))
		}
		switch k {
		case "realm":
			if v[0] == "" || strings.ContainsAny(v[0], "@/ ") {
				return kpasswdTarget{}, fmt.Errorf("bad realm %q", v[0])
			}
			t.realm = v[0]
		case "kdc":
			if t.kdc, err = hostPort(v[0], "88"); err != nil {
				return kpasswdTarget{}, fmt.Errorf("kdc: %w", err)
			}
		case "ldap":
			d, err := parseADURL(v[0])
			if err != nil {
				return kpasswdTarget{}, fmt.Errorf("ldap: %w", err)
			}
			t.directory = &d
		default:
			return kpasswdTarget{}, fmt.Errorf("unknown URL parameter %q (only realm, kdc and ldap)", k)
		}
	}
	return t, nil
}

// hostPort validates HOST[:PORT] and adds the default port.
func hostPort(s, defaultPort string) (string, error) {
	u, err := url.Parse("kpasswd://" + s)
	if err != nil || u.User != nil || u.Hostname() == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("bad host %q", s)
	}
	port := u.Port()
	if port == "" {
		port = defaultPort
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("bad port in %q", s)
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// principal is the user's Kerberos name and realm.
func (t kpasswdTarget) principal(user string) (name, realm string, err error) {
	name, domain := user, ""
	if i := strings.LastIndexByte(user, '@'); i >= 0 {
		name, domain = user[:i], user[i+1:]
	}
	realm = t.realm
	if realm == "" {
		realm = strings.ToUpper(domain)
	}
	switch {
	case name == "":
		return "", "", errors.New("no user name")
	case realm == "":
		return "", "", fmt.Errorf("the user name %q has no domain: add ?realm=YOUR.REALM to the URL", user)
	case strings.ContainsAny(name, "/@") || strings.IndexFunc(name+realm, unicode.IsControl) >= 0:
		return "", "", fmt.Errorf("%q is not a user principal name", user)
	}
	return name, realm, nil
}
