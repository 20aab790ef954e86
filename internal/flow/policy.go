package flow

import (
	"strings"
	"unicode/utf8"

	"github.com/credsync/credsync/internal/endpoint"
)

// MaxPassword bounds a password. Longer ones are refused, never truncated.
const MaxPassword = 4096

// checkNew applies the rules every password obeys before any network call.
// It returns the broken rule's name, or "".
func checkNew(current, next string) (rule, message string) {
	switch {
	case next == "":
		return "empty", "the new password is empty"
	case len(next) > MaxPassword:
		return "too_long", "the new password is longer than 4096 bytes"
	case !utf8.ValidString(next):
		return "invalid_utf8", "the new password is not valid UTF-8"
	case strings.ContainsAny(next, "\x00\r\n"):
		return "control_characters", "the new password contains NUL, CR or LF, which mail servers cannot receive"
	case current != "" && next == current:
		return "same_as_current", "the new password is the same as the current one"
	}
	return "", ""
}

// checkAccount refuses accounts with no server or whose logins are not
// passwords (OAuth2, GSSAPI, NTLM, certificates).
func checkAccount(acct Account) *Error {
	if acct.Incoming == nil && acct.Outgoing == nil {
		return &Error{Code: NotPasswordAccount, Message: "the account has no server to update"}
	}
	for _, ep := range []*endpoint.Endpoint{acct.Incoming, acct.Outgoing} {
		if ep != nil && !ep.AuthMethod.UsesPassword() {
			return &Error{Code: NotPasswordAccount, Message: ep.String() + " signs in without a password (OAuth2, Kerberos, NTLM or a certificate); credsync has nothing to update"}
		}
	}
	return nil
}
