package verify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-smtp"
)

// stage is where in the exchange an error happened.
type stage int

const (
	stageConnect stage = iota // greeting and capabilities, before any STARTTLS
	stageTLS                  // STARTTLS command and the TLS handshake
	stageAuth                 // the authentication exchange
)

// Errors produced here, recognised by classify.
var (
	errNotEncrypted = errors.New("the connection is not encrypted after STARTTLS")
	errNoSTARTTLS   = errors.New("the server does not offer STARTTLS")
)

// errGoSMTPNoSTARTTLS is the text of go-smtp's bare errors.New.
const errGoSMTPNoSTARTTLS = "smtp: server doesn't support STARTTLS"

// classify maps err, seen at stage st, to an Outcome; plain reports that the
// account is configured without TLS. Order (first match wins): TLS errors and
// anything during STARTTLS; protocol status (IMAP, SMTP, POP3); network;
// everything else is a protocol error.
func classify(err error, st stage, plain bool) Outcome {
	if err == nil {
		return OK
	}
	if isTLSError(err) || st == stageTLS {
		return TLSError
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		return classifyIMAP(ie, st, plain)
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return classifySMTP(se, plain)
	}
	var pe *pop3Error
	if errors.As(err, &pe) {
		return classifyPOP3(pe, plain)
	}
	if isNetworkError(err) {
		return NetworkError
	}
	return ProtocolError
}

// expiredWording is how servers without a response code for it say that
// a password has expired or must be changed first ("Password expired",
// "your password has expired", "expired password", "password must be
// changed", "password change required").
var expiredWording = regexp.MustCompile(`(?i)\bpassword(?:\s+has)?\s+expired\b|\bexpired\s+password\b|\bpassword\s+must\s+be\s+changed\b|\bpassword\s+(?:change|transition)\s+(?:is\s+)?(?:required|needed)\b`)

// ExpiredWording reports whether a server's text says that the password
// has expired or must be changed (for servers without a code for it).
func ExpiredWording(text string) bool { return expiredWording.MatchString(text) }

// classifyIMAP: [UNAVAILABLE] (and [INUSE]) are temporary, [PRIVACYREQUIRED]
// is a TLS problem, [EXPIRED] (RFC 5530) or a NO saying so in words is an
// expired password, any other NO to LOGIN/AUTHENTICATE is a rejected
// password; the rest is unexpected.
func classifyIMAP(e *imap.Error, st stage, plain bool) Outcome {
	switch e.Code {
	case imap.ResponseCodePrivacyRequired:
		if plain {
			return RefusedPlaintext
		}
		return TLSError
	case imap.ResponseCodeUnavailable, imap.ResponseCodeInUse:
		return Temporary
	case imap.ResponseCodeExpired:
		return PasswordExpired
	}
	if st == stageAuth && e.Type == imap.StatusResponseTypeNo {
		if ExpiredWording(e.Text) {
			return PasswordExpired
		}
		return AuthFailed
	}
	return ProtocolError
}

// classifySMTP: x.7.12 ("a password transition is needed", RFC 4954) or a
// refusal saying so in words is an expired password, whatever the basic
// code, since the enhanced code is the more specific (RFC 3463); 523/530/538
// mean "TLS first"; 535, x.7.8 and 534 are a rejected password; any other
// 4xx is temporary.
func classifySMTP(e *smtp.SMTPError, plain bool) Outcome {
	switch {
	case e.EnhancedCode[1] == 7 && e.EnhancedCode[2] == 12 && (e.Code/100 == 4 || e.Code/100 == 5),
		(e.Code == 535 || e.Code == 534 || e.Code == 432 || e.Code == 454) && ExpiredWording(e.Message):
		return PasswordExpired
	case e.Code == 523 || e.Code == 530 || e.Code == 538:
		if plain {
			return RefusedPlaintext
		}
		return TLSError
	case e.Code == 535 || e.Code == 534 || e.Code/100 == 5 && e.EnhancedCode == smtp.EnhancedCode{5, 7, 8}:
		return AuthFailed
	case e.Temporary():
		return Temporary
	}
	return ProtocolError
}

// classifyPOP3: [IN-USE], [SYS/TEMP] and [LOGIN-DELAY] are temporary; -ERR to
// PASS is a rejected password, or an expired one when it says so in words;
// -ERR to USER on a connection without TLS is a refusal to authenticate in
// plaintext.
func classifyPOP3(e *pop3Error, plain bool) Outcome {
	switch strings.ToUpper(e.Code) {
	case "IN-USE", "SYS/TEMP", "LOGIN-DELAY":
		return Temporary
	}
	switch e.Cmd {
	case "PASS":
		if ExpiredWording(e.Line) {
			return PasswordExpired
		}
		return AuthFailed
	case "USER":
		if plain {
			return RefusedPlaintext
		}
		if strings.EqualFold(e.Code, "AUTH") {
			return AuthFailed
		}
	case "STLS":
		return TLSError
	}
	return ProtocolError
}

// isStatus reports whether err carries a server's status reply.
func isStatus(err error) bool {
	var ie *imap.Error
	var se *smtp.SMTPError
	var pe *pop3Error
	return errors.As(err, &ie) || errors.As(err, &se) || errors.As(err, &pe)
}

func isTLSError(err error) bool {
	var (
		cve   *tls.CertificateVerificationError
		rhe   tls.RecordHeaderError
		ae    tls.AlertError
		echE  *tls.ECHRejectionError
		uae   x509.UnknownAuthorityError
		he    x509.HostnameError
		cie   x509.CertificateInvalidError
		sre   x509.SystemRootsError
		opErr *net.OpError
	)
	switch {
	case errors.As(err, &cve), errors.As(err, &rhe), errors.As(err, &ae), errors.As(err, &echE),
		errors.As(err, &uae), errors.As(err, &he), errors.As(err, &cie), errors.As(err, &sre):
		return true
	case errors.Is(err, errNotEncrypted), errors.Is(err, errNoSTARTTLS):
		return true
	case errors.As(err, &opErr) && (opErr.Op == "remote error" || opErr.Op == "local error"):
		// crypto/tls reports alerts received from, and sent to, the peer
		// as *net.OpError with these operations.
		return true
	}
	return strings.Contains(err.Error(), errGoSMTPNoSTARTTLS)
}

func isNetworkError(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		errors.As(err, &ne)
}

// statusDetail is the server's reply as it was on the wire, without the
// libraries' prefixes: "NO [AUTHENTICATIONFAILED] Authentication failed",
// "535 5.7.8 Authentication failed", "-ERR [AUTH] Authentication failed".
// A multi-line reply keeps its line breaks: the password is masked before
// the lines are joined (scrubResult).
func statusDetail(err error) (string, bool) {
	switch e := err.(type) {
	case *imap.Error:
		var sb strings.Builder
		sb.WriteString(string(e.Type))
		if e.Code != "" {
			sb.WriteString(" [" + string(e.Code) + "]")
		}
		if e.Text != "" {
			sb.WriteString(" " + e.Text)
		}
		return sb.String(), true
	case *smtp.SMTPError:
		s := strconv.Itoa(e.Code)
		if e.EnhancedCode[0] > 0 {
			s += fmt.Sprintf(" %d.%d.%d", e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2])
		}
		if e.Message != "" {
			s += " " + e.Message
		}
		return s, true
	case *pop3Error:
		return e.Line, true
	}
	return "", false
}
