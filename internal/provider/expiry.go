package provider

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// ExpiryState says when a password stops working, as far as the directory
// knows it.
type ExpiryState string

const (
	// Expires: the password works until Expiry.At.
	Expires ExpiryState = "expires"
	// Never: the directory's policy never expires it.
	Never ExpiryState = "never"
	// Expired: the password has expired (Expiry.At, when known, is when).
	Expired ExpiryState = "expired"
	// MustChange: the password must be changed before anything else
	// (AD "must change at next logon", ppolicy changeAfterReset).
	MustChange ExpiryState = "must_change"
	// Unknown: the directory does not say, or the back-end cannot know.
	Unknown ExpiryState = "unknown"
)

// Expiry is when a password expires and where that was read. It never
// carries a password.
type Expiry struct {
	State ExpiryState
	// At is when the password expires (Expires) or expired (Expired, when
	// the directory said when); zero otherwise. UTC.
	At time.Time
	// LastChanged is when the password was last set, zero when unknown.
	LastChanged time.Time
	// Source names what the answer was read from:
	// "msDS-UserPasswordExpiryTimeComputed", "bind: AD data 532", …; "none"
	// when nothing could be read.
	Source string
	// Grace is the number of logins an expired password still allows
	// (ppolicy graceAuthNsRemaining), -1 when the directory did not say.
	Grace int
	// Detail says why the state is unknown, in English, for logs and the
	// command line.
	Detail string
}

// ExpiryReader is a back-end that can read when the user's password
// expires. A check makes one bind as the user with the password
// (Request.Current) and reads the user's own entry: no other login, and
// nothing is written (save what the directory itself records on a bind).
// The error, a *Error, says why it could not tell: WrongCurrent (the
// password is wrong), Unreachable, Locked, Rejected.
type ExpiryReader interface {
	Expiry(ctx context.Context, r Request) (Expiry, error)
}

// SourceNone is the Source of an Expiry nothing was read for.
const SourceNone = "none"

// ReadExpiry asks b when the password expires. A back-end that cannot know
// answers Unknown, without any connection.
func ReadExpiry(ctx context.Context, b Backend, r Request) (Expiry, error) {
	er, ok := b.(ExpiryReader)
	if !ok {
		return unknownExpiry("the " + b.Info().Name + " back-end cannot read when a password expires"), nil
	}
	if r.Current == "" {
		return Expiry{}, &Error{Kind: WrongCurrent, Detail: b.Info().Name + ": the password is empty"}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ldapTimeout)
		defer cancel()
	}
	return er.Expiry(ctx, r)
}

func unknownExpiry(why string) Expiry {
	return Expiry{State: Unknown, Source: SourceNone, Grace: -1, Detail: why}
}

// expiryAt is Expires at t, or Expired when t has passed.
func expiryAt(t, now time.Time, source string) Expiry {
	e := Expiry{State: Expires, At: t.UTC(), Source: source, Grace: -1}
	if !t.After(now) {
		e.State = Expired
	}
	return e
}

// FILETIME values of AD's expiry attributes.
const (
	fileTimeNever = math.MaxInt64 // 0x7FFFFFFFFFFFFFFF
	// fileTimeUnixEpoch is 1970-01-01 in 100 ns intervals since 1601-01-01.
	fileTimeUnixEpoch = 116444736000000000
)

// fileTime converts a FILETIME (100 ns intervals since 1601-01-01 UTC).
func fileTime(ft int64) time.Time {
	d := ft - fileTimeUnixEpoch
	return time.Unix(d/10_000_000, d%10_000_000*100).UTC()
}

// adExpiryOf reads an AD account's msDS-UserPasswordExpiryTimeComputed
// (pwdLastSet plus the effective maximum age: the domain's maxPwdAge or a
// fine-grained policy) and pwdLastSet.
func adExpiryOf(e *ldap.Entry, now time.Time) Expiry {
	const computed = "msDS-UserPasswordExpiryTimeComputed"
	var last time.Time
	lastSet, lastErr := strconv.ParseInt(e.GetAttributeValue("pwdLastSet"), 10, 64)
	if lastErr == nil && lastSet > 0 && lastSet != fileTimeNever {
		last = fileTime(lastSet)
	}
	raw := e.GetAttributeValue(computed)
	if raw == "" {
		if lastErr == nil && lastSet == 0 {
			return Expiry{State: MustChange, Source: "pwdLastSet", Grace: -1}
		}
		x := unknownExpiry("the directory returned no " + computed + " (not Active Directory, or the account may not read it)")
		x.LastChanged = last
		return x
	}
	v, err := strconv.ParseInt(raw, 10, 64)
	var x Expiry
	switch {
	case err != nil:
		x = unknownExpiry(fmt.Sprintf("unreadable %s %q", computed, raw))
	case v == 0:
		x = Expiry{State: MustChange, Source: computed, Grace: -1}
	case v == fileTimeNever || v < 0:
		x = Expiry{State: Never, Source: computed, Grace: -1}
	default:
		x = expiryAt(fileTime(v), now, computed)
	}
	x.LastChanged = last
	return x
}

// adBindExpiry reads the AD data code of a bind refused with
// invalidCredentials: 532 (expired) and 773 (must change) say the
// password was right.
func adBindExpiry(err error) (Expiry, bool) {
	code, msg, server := ldapResult(err)
	if !server || code != ldap.LDAPResultInvalidCredentials {
		return Expiry{}, false
	}
	m := adBindData.FindStringSubmatch(msg)
	if m == nil {
		return Expiry{}, false
	}
	switch data := m[1]; data {
	case "532":
		return Expiry{State: Expired, Source: "bind: AD data 532", Grace: -1}, true
	case "773":
		return Expiry{State: MustChange, Source: "bind: AD data 773", Grace: -1}, true
	}
	return Expiry{}, false
}

// adReadExpiry binds to the domain controller of t as upn, finds the
// account and reads its expiry: one bind, the rootDSE (without a base DN
// in the URL), the account search and a read of its entry.
func adReadExpiry(ctx context.Context, name string, t adTarget, upn, password string, r Request) (Expiry, error) {
	secrets := []string{password}
	conn, _, closeConn, err := dialTLSLDAP(ctx, name, t.host, t.addr, t.implicitTLS, r.Roots)
	if err != nil {
		return Expiry{}, err
	}
	defer closeConn()
	if err := conn.Bind(upn, password); err != nil {
		if x, ok := adBindExpiry(err); ok {
			return x, nil
		}
		return Expiry{}, adBindError(ctxErr(ctx, err), upn, secrets)
	}
	base := t.base
	if base == "" {
		if base, err = adDefaultNamingContext(conn); err != nil {
			return Expiry{}, adSearchError(ctxErr(ctx, err), "reading the rootDSE", secrets)
		}
	}
	dn, err := adFindUser(conn, base, upn)
	if err != nil {
		return Expiry{}, adSearchError(ctxErr(ctx, err), "looking up "+upn+" under "+base, secrets)
	}
	// A base read: constructed attributes are computed for it everywhere.
	res, err := conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, 0, false, "(objectClass=*)", []string{"msDS-UserPasswordExpiryTimeComputed", "pwdLastSet"}, nil))
	if err != nil {
		return Expiry{}, adSearchError(ctxErr(ctx, err), "reading "+dn, secrets)
	}
	if len(res.Entries) != 1 {
		return unknownExpiry("the directory returned no entry for " + dn), nil
	}
	return adExpiryOf(res.Entries[0], time.Now()), nil
}

// Expiry reads msDS-UserPasswordExpiryTimeComputed and pwdLastSet of the
// user's own account, bound as the user (ExpiryReader).
func (ad) Expiry(ctx context.Context, r Request) (Expiry, error) {
	t, err := parseADURL(r.URL)
	if err != nil {
		return Expiry{}, &Error{Kind: Unreachable, Detail: "ad: " + err.Error()}
	}
	upn, err := t.upn(r.Username)
	if err != nil {
		return Expiry{}, &Error{Kind: Unreachable, Detail: "ad: " + err.Error()}
	}
	return adReadExpiry(ctx, "ad", t, upn, r.Current, r)
}

// Expiry reads the expiry from the directory the URL's ldap= names, as
// the ad back-end does, bound as the Kerberos principal (name@REALM, which
// Active Directory accepts as a user principal name). Without ldap= it
// cannot know (ExpiryReader).
func (kpasswd) Expiry(ctx context.Context, r Request) (Expiry, error) {
	t, err := parseKpasswdURL(r.URL)
	if err != nil {
		return Expiry{}, &Error{Kind: Unreachable, Detail: "kpasswd: " + err.Error()}
	}
	if t.directory == nil {
		return unknownExpiry("the kpasswd back-end reads the expiry only from the directory its URL names: add &ldap=ldaps://dc.example.org"), nil
	}
	name, realm, err := t.principal(r.Username)
	if err != nil {
		return Expiry{}, &Error{Kind: Unreachable, Detail: "kpasswd: " + err.Error()}
	}
	upn := name + "@" + realm
	if t.directory.upnTemplate != "" {
		if upn, err = t.directory.upn(r.Username); err != nil {
			return Expiry{}, &Error{Kind: Unreachable, Detail: "kpasswd: ldap=: " + err.Error()}
		}
	}
	return adReadExpiry(ctx, "kpasswd", *t.directory, upn, r.Current, r)
}

// ppolicy's error values in the response control
// (draft-behera-ldap-password-policy).
const (
	ppPasswordExpired  = 0
	ppAccountLocked    = 1
	ppChangeAfterReset = 2
)

// passwordPolicy is the password-policy response control of a bind, or nil.
func passwordPolicy(res *ldap.SimpleBindResult) *ldap.ControlBeheraPasswordPolicy {
	if res == nil {
		return nil
	}
	for _, c := range res.Controls {
		if pp, ok := c.(*ldap.ControlBeheraPasswordPolicy); ok {
			return pp
		}
	}
	return nil
}

// Expiry binds as the user with the password-policy request control
// (OpenLDAP ppolicy) and reads its answer: timeBeforeExpiration inside the
// warning window, graceAuthNsRemaining, passwordExpired, changeAfterReset.
// When it says nothing, the expiry is the entry's pwdChangedTime plus the
// pwdMaxAge of the policy its pwdPolicySubentry names, if the user may read
// them (ExpiryReader).
func (ldapBackend) Expiry(ctx context.Context, r Request) (Expiry, error) {
	t, err := parseLDAPURL(r.URL)
	if err != nil {
		return Expiry{}, &Error{Kind: Unreachable, Detail: "ldap: " + err.Error()}
	}
	dn, err := t.bindDN(r.Username)
	if err != nil {
		return Expiry{}, &Error{Kind: Unreachable, Detail: "ldap: " + err.Error()}
	}
	secrets := []string{r.Current}
	conn, _, closeConn, err := dialTLSLDAP(ctx, "ldap", t.host, t.addr, t.implicitTLS, r.Roots)
	if err != nil {
		return Expiry{}, err
	}
	defer closeConn()
	now := time.Now()
	res, err := conn.SimpleBind(&ldap.SimpleBindRequest{Username: dn, Password: r.Current,
		Controls: []ldap.Control{ldap.NewControlBeheraPasswordPolicy()}})
	pp := passwordPolicy(res)
	if err != nil {
		if code, _, server := ldapResult(err); server && code == ldap.LDAPResultInvalidCredentials && pp != nil {
			switch pp.Error {
			case ppPasswordExpired:
				return Expiry{State: Expired, Source: "ppolicy passwordExpired", Grace: 0}, nil
			case ppChangeAfterReset:
				return Expiry{State: MustChange, Source: "ppolicy changeAfterReset", Grace: -1}, nil
			case ppAccountLocked:
				return Expiry{}, &Error{Kind: Locked, Detail: "ldap: the directory says the account " + dn + " is locked (ppolicy accountLocked)"}
			}
		}
		return Expiry{}, ldapBindError(ctxErr(ctx, err), dn, secrets)
	}
	if pp != nil {
		switch {
		case pp.Error == ppChangeAfterReset:
			return Expiry{State: MustChange, Source: "ppolicy changeAfterReset", Grace: -1}, nil
		case pp.Error == ppPasswordExpired:
			return Expiry{State: Expired, Source: "ppolicy passwordExpired", Grace: int(max(pp.Grace, -1))}, nil
		case pp.Grace >= 0:
			return Expiry{State: Expired, Source: "ppolicy graceAuthNsRemaining", Grace: int(pp.Grace)}, nil
		case pp.Expire >= 0:
			return expiryAt(now.Add(time.Duration(pp.Expire)*time.Second).Truncate(time.Second), now, "ppolicy timeBeforeExpiration"), nil
		}
	}
	return ppolicyComputed(conn, dn, now), nil
}

// ppolicyComputed is the expiry outside the warning window:
// pwdChangedTime plus the policy's pwdMaxAge, read as the user.
func ppolicyComputed(conn *ldap.Conn, dn string, now time.Time) Expiry {
	read := func(base string, attrs ...string) (*ldap.Entry, error) {
		res, err := conn.Search(ldap.NewSearchRequest(base, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
			1, 0, false, "(objectClass=*)", attrs, nil))
		if err != nil {
			return nil, err
		}
		if len(res.Entries) != 1 {
			return nil, fmt.Errorf("no entry %s", base)
		}
		return res.Entries[0], nil
	}
	e, err := read(dn, "pwdChangedTime", "pwdPolicySubentry")
	if err != nil {
		return unknownExpiry("the password policy says nothing and the entry cannot be read: " + oneLineErr(err))
	}
	var changed time.Time
	if v := e.GetAttributeValue("pwdChangedTime"); v != "" {
		// GeneralizedTime; time.Parse also takes a fraction after the seconds.
		if changed, err = time.Parse("20060102150405Z0700", v); err != nil {
			return unknownExpiry(fmt.Sprintf("unreadable pwdChangedTime %q", v))
		}
		changed = changed.UTC()
	}
	policy := e.GetAttributeValue("pwdPolicySubentry")
	unknown := func(why string) Expiry {
		x := unknownExpiry(why)
		x.LastChanged = changed
		return x
	}
	if policy == "" {
		return unknown("the password policy says nothing and the entry names no pwdPolicySubentry (the default policy is not readable by clients)")
	}
	p, err := read(policy, "pwdMaxAge")
	if err != nil {
		return unknown("the password policy " + policy + " cannot be read: " + oneLineErr(err))
	}
	maxAge, err := strconv.ParseInt(p.GetAttributeValue("pwdMaxAge"), 10, 64)
	switch {
	case p.GetAttributeValue("pwdMaxAge") == "" || err == nil && maxAge == 0:
		return Expiry{State: Never, LastChanged: changed, Source: "pwdMaxAge", Grace: -1}
	case err != nil || maxAge < 0:
		return unknown(fmt.Sprintf("unreadable pwdMaxAge %q", p.GetAttributeValue("pwdMaxAge")))
	case changed.IsZero():
		return unknown("the entry has no pwdChangedTime (its password was set before the policy applied)")
	}
	x := expiryAt(changed.Add(time.Duration(maxAge)*time.Second), now, "pwdChangedTime + pwdMaxAge")
	x.LastChanged = changed
	return x
}

func oneLineErr(err error) string { return collapseText(err.Error()) }
