package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"

	"github.com/credsync/credsync/internal/policy"
	sysroots "github.com/credsync/credsync/internal/roots"
)

// ad changes a password in Active Directory (or Samba AD) the way Windows
// does over LDAP: bound as the user with the current password, one Modify
// that deletes the current unicodePwd value and adds the new one
// (MS-ADTS 3.1.1.3.1.5.1). That is a user change, so the domain's policy
// applies (length, complexity, history, minimum age); an administrator's
// reset (a replace) would bypass it, and credsync never does one.
//
// Request.URL is
//
//	ldaps://HOST[:PORT][/BASE-DN][?upn=TEMPLATE]   implicit TLS, port 636 by default
//	ldap://HOST[:PORT][/BASE-DN][?upn=TEMPLATE]    StartTLS (required), port 389
//
// Active Directory refuses unicodePwd on an unencrypted connection, and
// credentials go only over a verified TLS connection: there is no plaintext
// mode.
//
// The user binds with a user principal name, which AD accepts as a bind DN.
// By default it is the account's user name, which must then contain an @
// (bob@example.org). upn= gives a template instead, written as is (not
// percent-decoded), with
//
//	%u  the whole user name
//	%n  its local part, before the last @
//	%d  its domain, after the last @ (empty without @)
//	%%  a literal %
//
// for example ldaps://dc.example.org?upn=%n@CORP.EXAMPLE.ORG when mail user
// names are not UPNs. The user's DN is searched under BASE-DN (default: the
// rootDSE's defaultNamingContext) by userPrincipalName, or by sAMAccountName
// equal to the UPN's local part for accounts without an explicit UPN.
type ad struct{}

func (ad) Info() Info {
	return Info{
		Name:         "ad",
		Description:  "Active Directory or Samba AD (unicodePwd change over LDAPS or StartTLS); URL ldaps://dc.example.org[?upn=%n@EXAMPLE.ORG]",
		NeedsURL:     true,
		NeedsCurrent: true,
		// MS-SAMR: at most 256 characters; the domain's own rules (minimum
		// length, complexity, history, age) are only known to the server.
		Rules:  &policy.Rules{MaxLength: 256},
		Expiry: true,
	}
}

func (ad) Change(ctx context.Context, r Request) error {
	t, err := parseADURL(r.URL)
	if err != nil {
		return &Error{Kind: Unreachable, Detail: "ad: " + err.Error()}
	}
	upn, err := t.upn(r.Username)
	if err != nil {
		return &Error{Kind: Unreachable, Detail: "ad: " + err.Error()}
	}
	switch {
	case r.Current == "":
		// go-ldap refuses it anyway: an empty password is an unauthenticated bind.
		return &Error{Kind: WrongCurrent, Detail: "ad: the current password is empty"}
	case r.New == "":
		return &Error{Kind: Rejected, Rule: policy.RuleEmpty, Detail: "ad: the new password is empty"}
	case !utf8.ValidString(r.New):
		return &Error{Kind: Rejected, Rule: policy.RuleInvalidUTF8, Detail: "ad: the new password is not valid UTF-8"}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ldapTimeout)
		defer cancel()
	}
	secrets := []string{r.Current, r.New}

	conn, tracked, closeConn, err := dialTLSLDAP(ctx, "ad", t.host, t.addr, t.implicitTLS, r.Roots)
	if err != nil {
		return err
	}
	defer closeConn()

	if err := conn.Bind(upn, r.Current); err != nil {
		return adBindError(ctxErr(ctx, err), upn, secrets)
	}
	base := t.base
	if base == "" {
		if base, err = adDefaultNamingContext(conn); err != nil {
			return adSearchError(ctxErr(ctx, err), "reading the rootDSE", secrets)
		}
	}
	dn, err := adFindUser(conn, base, upn)
	if err != nil {
		return adSearchError(ctxErr(ctx, err), "looking up "+upn+" under "+base, secrets)
	}

	req := ldap.NewModifyRequest(dn, nil)
	req.Delete("unicodePwd", []string{adPassword(r.Current)})
	req.Add("unicodePwd", []string{adPassword(r.New)})
	tracked.arm()
	if err := conn.Modify(req); err != nil {
		return adModifyError(ctxErr(ctx, err), tracked.wroteArmed(), secrets)
	}
	return nil
}

// adPassword is a unicodePwd value: the password in double quotes, in
// UTF-16LE (MS-ADTS 3.1.1.3.1.5.1).
func adPassword(pw string) string {
	u := utf16.Encode([]rune(`"` + pw + `"`))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return string(b)
}

// dialTLSLDAP connects to addr and sets up TLS (implicit, or StartTLS when
// implicitTLS is false), verifying host's certificate against roots. The
// returned tracker records writes once armed; closeConn ends the
// connection. Errors are *Error of kind Unreachable, prefixed with name.
func dialTLSLDAP(ctx context.Context, name, host, addr string, implicitTLS bool, roots *x509.CertPool) (*ldap.Conn, *writeTracker, func(), error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, nil, &Error{Kind: Unreachable, Detail: name + ": cannot connect to " + addr, Err: err}
	}
	tracked := &writeTracker{Conn: raw}
	// Cancelling ctx closes the socket, which ends any blocked read, write or
	// handshake inside go-ldap.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	var conn *ldap.Conn
	closeConn := func() {
		stop()
		if conn != nil {
			conn.Close()
		}
		raw.Close()
	}
	fail := func(detail string, err error) (*ldap.Conn, *writeTracker, func(), error) {
		closeConn()
		return nil, nil, nil, &Error{Kind: Unreachable, Detail: name + ": " + detail, Err: err}
	}

	cfg := &tls.Config{ServerName: host, RootCAs: sysroots.Or(roots), MinVersion: tls.VersionTLS12}
	if implicitTLS {
		tc := tls.Client(tracked, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail("TLS handshake with "+addr+" failed", err)
		}
		conn = ldap.NewConn(tc, true)
	} else {
		conn = ldap.NewConn(tracked, false)
	}
	conn.Start()
	if dl, ok := ctx.Deadline(); ok {
		// A little longer than ctx: its expiry closes the socket (above),
		// so the error says which deadline passed.
		conn.SetTimeout(time.Until(dl) + time.Second)
	}
	if !implicitTLS {
		if err := conn.StartTLS(cfg); err != nil {
			return fail("StartTLS with "+addr+" failed (credentials are never sent without TLS)", ctxErr(ctx, err))
		}
	}
	if st, ok := conn.TLSConnectionState(); !ok || !st.HandshakeComplete {
		return fail("the connection is not encrypted", nil)
	}
	return conn, tracked, closeConn, nil
}

// adDefaultNamingContext reads the domain's DN from the rootDSE.
func adDefaultNamingContext(conn *ldap.Conn) (string, error) {
	res, err := conn.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, 0, false, "(objectClass=*)", []string{"defaultNamingContext"}, nil))
	if err != nil {
		return "", err
	}
	if len(res.Entries) == 1 {
		if nc := res.Entries[0].GetAttributeValue("defaultNamingContext"); nc != "" {
			return nc, nil
		}
	}
	return "", errNoNamingContext
}

var (
	errNoNamingContext = errors.New("the server names no defaultNamingContext (is it Active Directory? Put the base DN in the URL: ldaps://host/DC=example,DC=org)")
	errNoAccount       = errors.New("no account found")
	errManyAccounts    = errors.New("more than one account matches")
)

// adFindUser returns the DN of the account that upn names: the one whose
// userPrincipalName is upn, else the only one whose sAMAccountName is its
// local part (AD's implicit UPN sAMAccountName@dns-domain).
func adFindUser(conn *ldap.Conn, base, upn string) (string, error) {
	local := upn[:strings.LastIndexByte(upn, '@')]
	filter := fmt.Sprintf("(&(objectClass=user)(|(userPrincipalName=%s)(sAMAccountName=%s)))",
		ldap.EscapeFilter(upn), ldap.EscapeFilter(local))
	res, err := conn.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		10, 0, false, filter, []string{"userPrincipalName", "sAMAccountName"}, nil))
	if err != nil {
		return "", err
	}
	var bySAM []string
	for _, e := range res.Entries {
		if strings.EqualFold(e.GetAttributeValue("userPrincipalName"), upn) {
			return e.DN, nil
		}
		if strings.EqualFold(e.GetAttributeValue("sAMAccountName"), local) {
			bySAM = append(bySAM, e.DN)
		}
	}
	switch len(bySAM) {
	case 0:
		return "", errNoAccount
	case 1:
		return bySAM[0], nil
	}
	return "", errManyAccounts
}

// adSearchError maps a failed rootDSE read or account search: nothing has
// been changed yet.
func adSearchError(err error, what string, secrets []string) error {
	code, msg, server := ldapResult(err)
	switch {
	case errors.Is(err, errNoNamingContext), errors.Is(err, errNoAccount), errors.Is(err, errManyAccounts):
		return &Error{Kind: Rejected, Detail: "ad: " + what + ": " + err.Error()}
	case !server:
		return &Error{Kind: Unreachable, Detail: "ad: " + what + " failed", Err: redactErr(err, secrets)}
	case code == ldap.LDAPResultBusy || code == ldap.LDAPResultUnavailable:
		return &Error{Kind: Unreachable, Detail: "ad: " + what + ": the directory is " + ldapResultText(code) + describe(msg, secrets)}
	}
	return &Error{Kind: Rejected, Detail: "ad: " + what + ": " + ldapResultText(code) + describe(msg, secrets)}
}

// adBindData finds the Windows error in a failed bind's diagnostic message:
// "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error,
// data 52e, v4563".
var adBindData = regexp.MustCompile(`\bdata ([0-9a-fA-F]{1,8})\b`)

// adBindReasons are the bind sub-codes worth telling apart.
var adBindReasons = map[string]struct {
	kind Kind
	text string
}{
	"52e": {WrongCurrent, "the domain refused the current password for %s"},
	"525": {Rejected, "the domain does not know the user %s"},
	"530": {Rejected, "%s may not log on at this time (logon hours)"},
	"531": {Rejected, "%s may not log on from this computer (workstation restriction)"},
	"532": {PasswordExpired, "the password of %s has expired and must be changed now: Active Directory refuses LDAP logons (so this back-end) until then; change it with the kpasswd back-end, which accepts the expired password, at a Windows logon, or ask the administrator"},
	"533": {Locked, "the account %s is disabled"},
	"701": {Locked, "the account %s has expired"},
	"773": {PasswordExpired, "the password of %s must be changed now (at the next logon): Active Directory refuses LDAP logons (so this back-end) until then; change it with the kpasswd back-end, which accepts it, at a Windows logon, or ask the administrator"},
	"775": {Locked, "the account %s is locked out (too many wrong passwords): wait until the lockout ends or ask the administrator"},
}

// adBindError maps a failed bind: nothing has been changed yet.
func adBindError(err error, upn string, secrets []string) error {
	code, msg, server := ldapResult(err)
	switch {
	case !server:
		return &Error{Kind: Unreachable, Detail: "ad: bind as " + upn + " failed", Err: redactErr(err, secrets)}
	case code == ldap.LDAPResultInvalidCredentials:
		if m := adBindData.FindStringSubmatch(msg); m != nil {
			if r, ok := adBindReasons[strings.ToLower(m[1])]; ok {
				return &Error{Kind: r.kind, Detail: "ad: " + fmt.Sprintf(r.text, upn) + " (data " + strings.ToLower(m[1]) + ")"}
			}
		}
		return &Error{Kind: WrongCurrent, Detail: "ad: the domain refused the current password for " + upn + describe(msg, secrets)}
	case code == ldap.LDAPResultBusy || code == ldap.LDAPResultUnavailable:
		return &Error{Kind: Unreachable, Detail: "ad: the directory is " + ldapResultText(code) + describe(msg, secrets)}
	}
	return &Error{Kind: Rejected, Detail: "ad: the directory refused the bind as " + upn + ": " + ldapResultText(code) + describe(msg, secrets)}
}

// adWinCode finds the Windows error codes (8 hex digits and a colon) in a
// diagnostic message: "0000052D: Constraint violation - …" (Samba),
// "00000056: AtrErr: DSID-03191083, #1: …" (Windows).
var adWinCode = regexp.MustCompile(`(?:^|\s)([0-9A-Fa-f]{8}):`)

const (
	winInvalidPassword     = 0x56  // ERROR_INVALID_PASSWORD: wrong current password
	winPasswordRestriction = 0x52D // ERROR_PASSWORD_RESTRICTION: the domain's rules
	winAccessDenied        = 0x5   // ERROR_ACCESS_DENIED
)

func adWinCodes(msg string) map[uint64]bool {
	codes := map[uint64]bool{}
	for _, m := range adWinCode.FindAllStringSubmatch(msg, -1) {
		if c, err := strconv.ParseUint(m[1], 16, 32); err == nil {
			codes[c] = true
		}
	}
	return codes
}

// adModifyError maps a failed unicodePwd change. sent reports whether any
// byte of the request was written: a network failure after that may have
// come after the domain applied the change.
func adModifyError(err error, sent bool, secrets []string) error {
	code, msg, server := ldapResult(err)
	if !server {
		if sent {
			return &Error{Kind: OutcomeUnknown, Detail: "ad: the connection failed after the password change was sent", Err: redactErr(err, secrets)}
		}
		return &Error{Kind: Unreachable, Detail: "ad: the password change could not be sent", Err: redactErr(err, secrets)}
	}
	codes := adWinCodes(msg)
	lower := strings.ToLower(msg)
	text := describe(msg, secrets)
	switch {
	case codes[winInvalidPassword] || strings.Contains(lower, "old password specified doesn't match"):
		return &Error{Kind: WrongCurrent, Detail: "ad: the domain refused the current password" + text}
	// Samba says which rule; Windows does not.
	case strings.Contains(lower, "too young to change"):
		return &Error{Kind: TooRecent, Detail: "ad: the password was changed too recently (the domain's minimum password age)" + text}
	case strings.Contains(lower, "already used"):
		return &Error{Kind: RecentlyUsed, Detail: "ad: the new password is in the account's password history" + text}
	case strings.Contains(lower, "can't be changed on this account"), strings.Contains(lower, "password changes disabled"),
		code == ldap.LDAPResultInsufficientAccessRights, codes[winAccessDenied]:
		return &Error{Kind: Locked, Detail: "ad: the account may not change its own password" + text}
	case codes[winPasswordRestriction], code == ldap.LDAPResultConstraintViolation:
		return &Error{
			Kind:   Rejected,
			Rule:   policy.RuleFromMessage(classifiable(msg, secrets...)),
			Detail: "ad: the domain refused the new password (its rules: length, complexity, history or minimum age)" + text,
		}
	case code == ldap.LDAPResultBusy || code == ldap.LDAPResultUnavailable:
		return &Error{Kind: Unreachable, Detail: "ad: the directory is " + ldapResultText(code) + text}
	}
	return &Error{Kind: Rejected, Detail: "ad: the directory refused the password change: " + ldapResultText(code) + text}
}

// adTarget is a parsed back-end URL.
type adTarget struct {
	host        string // for TLS verification
	addr        string // host:port
	implicitTLS bool
	base        string // search base; "" = the rootDSE's defaultNamingContext
	upnTemplate string // "" = the user name
}

func parseADURL(raw string) (adTarget, error) {
	if raw == "" {
		return adTarget{}, errors.New("no URL (ldaps://dc.example.org or ldap://dc.example.org with StartTLS)")
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return adTarget{}, errors.New("the URL must start with ldaps:// or ldap://")
	}
	var t adTarget
	port := "389"
	switch strings.ToLower(scheme) {
	case "ldap":
	case "ldaps":
		t.implicitTLS, port = true, "636"
	default:
		return adTarget{}, fmt.Errorf("unsupported scheme %q (use ldaps:// or ldap:// with StartTLS)", scheme)
	}
	if strings.ContainsAny(rest, "#\x00\r\n") {
		return adTarget{}, errors.New("the URL must not contain # or control characters")
	}
	rest, query, _ := strings.Cut(rest, "?")
	hostport, path, _ := strings.Cut(rest, "/")
	u, err := url.Parse("ldap://" + hostport)
	if err != nil || u.User != nil || u.Host == "" || u.Hostname() == "" || u.Path != "" || u.RawQuery != "" {
		return adTarget{}, fmt.Errorf("bad host %q", hostport)
	}
	if p := u.Port(); p != "" {
		port = p
	}
	t.host = u.Hostname()
	t.addr = net.JoinHostPort(t.host, port)
	if path != "" {
		base, err := url.PathUnescape(path)
		if err != nil {
			return adTarget{}, fmt.Errorf("bad base DN %q: %w", path, err)
		}
		if _, err := ldap.ParseDN(base); err != nil {
			return adTarget{}, fmt.Errorf("the base DN %q is not a valid DN: %w", base, err)
		}
		t.base = base
	}
	if query != "" {
		for _, kv := range strings.Split(query, "&") {
			k, v, _ := strings.Cut(kv, "=")
			if k != "upn" || t.upnTemplate != "" {
				return adTarget{}, fmt.Errorf("unknown or repeated URL parameter %q (only upn=TEMPLATE, once)", k)
			}
			if err := checkUPNTemplate(v); err != nil {
				return adTarget{}, err
			}
			t.upnTemplate = v
		}
	}
	return t, nil
}

func checkUPNTemplate(tmpl string) error {
	if !strings.Contains(tmpl, "@") && !strings.Contains(tmpl, "%u") {
		return errors.New("the upn template must give a name@domain (e.g. upn=%n@EXAMPLE.ORG)")
	}
	return checkTemplate(tmpl, "upn")
}

// upn is the name the user binds with: the template filled with the user
// name, or the user name itself.
func (t adTarget) upn(user string) (string, error) {
	if user == "" {
		return "", errors.New("no user name")
	}
	upn := user
	if t.upnTemplate != "" {
		upn = expandUserTemplate(t.upnTemplate, user, func(s string) string { return s })
	}
	at := strings.LastIndexByte(upn, '@')
	switch {
	case at < 0 && t.upnTemplate == "":
		return "", fmt.Errorf("the user name %q is not a user principal name (name@domain): add ?upn=%%n@YOUR.DOMAIN to the URL", user)
	case at <= 0 || at == len(upn)-1:
		return "", fmt.Errorf("%q is not a user principal name (name@domain)", upn)
	case strings.IndexFunc(upn, unicode.IsControl) >= 0:
		return "", errors.New("the user principal name contains control characters")
	}
	return upn, nil
}

// checkTemplate refuses a user-name template (what: "bind DN", "upn")
// with a % other than %u, %n, %d or %%.
func checkTemplate(tmpl, what string) error {
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '%' {
			continue
		}
		if i+1 == len(tmpl) || !strings.ContainsRune("und%", rune(tmpl[i+1])) {
			return fmt.Errorf("the %s template knows only %%u, %%n, %%d and %%%%", what)
		}
		i++
	}
	return nil
}

// expandUserTemplate fills %u (user), %n (its local part), %d (its domain)
// and %% in tmpl, each value passed through escape.
func expandUserTemplate(tmpl, user string, escape func(string) string) string {
	local, domain := user, ""
	if i := strings.LastIndexByte(user, '@'); i >= 0 {
		local, domain = user[:i], user[i+1:]
	}
	var b strings.Builder
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		if c != '%' || i+1 == len(tmpl) {
			b.WriteByte(c)
			continue
		}
		i++
		switch tmpl[i] {
		case 'u':
			b.WriteString(escape(user))
		case 'n':
			b.WriteString(escape(local))
		case 'd':
			b.WriteString(escape(domain))
		default:
			b.WriteByte(tmpl[i])
		}
	}
	return b.String()
}
