package verify

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/credsync/credsync/internal/endpoint"
)

// heloName is the EHLO argument. go-smtp uses it before STARTTLS too.
const heloName = "localhost"

// runSMTP authenticates with AUTH PLAIN when advertised, else AUTH LOGIN.
func runSMTP(ctx context.Context, a *attempt, conn net.Conn) Result {
	var c *smtp.Client
	defer func() {
		if c != nil && a.goodbye == nil {
			c.Close()
		}
	}()
	if a.ep.Security == endpoint.STARTTLS {
		a.raw.setCapture(true)
		var err error
		c, err = smtp.NewClientStartTLS(conn, a.tls)
		a.raw.setCapture(false)
		if err != nil {
			// NewClientStartTLS reads the greeting, sends EHLO and
			// STARTTLS: only failures from STARTTLS on are TLS problems.
			if strings.Contains(err.Error(), errGoSMTPNoSTARTTLS) {
				return Result{Outcome: TLSError, Detail: errNoSTARTTLS.Error(), Err: errors.Join(errNoSTARTTLS, err)}
			}
			if a.raw.sentSTARTTLS() {
				return a.fail(err, stageTLS)
			}
			return a.fail(err, stageConnect)
		}
		// go-smtp's handshake is lazy: Hello runs it and surfaces its error.
		if err := c.Hello(heloName); err != nil {
			return a.fail(err, stageTLS)
		}
		if st, ok := c.TLSConnectionState(); !ok || !st.HandshakeComplete {
			return local(TLSError, errNotEncrypted)
		}
	} else {
		c = smtp.NewClient(conn)
		if err := c.Hello(heloName); err != nil {
			return a.fail(err, stageConnect)
		}
	}

	// Hello succeeded, so Extension reports what EHLO said.
	hasAuth, mechs := c.Extension("AUTH")
	if !hasAuth {
		if a.plain() {
			return local(RefusedPlaintext, errors.New("the server does not offer AUTH without TLS"))
		}
		return local(ProtocolError, errors.New("the server does not offer AUTH"))
	}
	var client sasl.Client
	switch {
	case hasMech(mechs, sasl.Plain):
		client = sasl.NewPlainClient("", a.ep.Username, a.password)
	case hasMech(mechs, sasl.Login):
		client = &loginClient{username: a.ep.Username, password: a.password}
	default:
		return local(ProtocolError, errors.New("the server offers neither AUTH PLAIN nor AUTH LOGIN (it offers: "+oneLine(mechs)+")"))
	}
	a.credsSent = true
	if err := c.Auth(client); err != nil {
		return a.fail(err, stageAuth)
	}
	if lc, ok := client.(*loginClient); ok && !lc.sentPassword() {
		// 235 before the second challenge: the password never went out.
		return local(ProtocolError, errAcceptedEarly)
	}
	// go-smtp's Quit sends QUIT and reads the reply in one call: run it
	// aside and return once QUIT is on the wire; once waits for the reply
	// (see attempt.goodbye).
	c.CommandTimeout = goodbyeWait
	sent := a.raw.nextWrite()
	quit := make(chan struct{})
	go func() {
		defer close(quit)
		_ = c.Quit()
	}()
	select {
	case <-sent:
	case <-quit:
	}
	a.goodbye = func() { <-quit }
	return Result{Outcome: OK}
}

func hasMech(list, mech string) bool {
	for _, m := range strings.Fields(list) {
		if strings.EqualFold(m, mech) {
			return true
		}
	}
	return false
}

// loginClient is SASL LOGIN for strict servers: no initial response, and the
// user name then the password in answer to the first and second challenge,
// whatever their text ("Username:", "User Name", base64 garbage...).
// go-sasl's LOGIN client sends the user name as an initial response and
// insists on the challenge "Password:", which strict servers (Exchange style)
// answer with 535 and which would be misreported as a wrong password.
type loginClient struct {
	username, password string
	step               int
}

func (l *loginClient) Start() (string, []byte, error) {
	return sasl.Login, nil, nil
}

func (l *loginClient) Next(challenge []byte) ([]byte, error) {
	l.step++
	switch l.step {
	case 1:
		return nonNil(l.username), nil
	case 2:
		return nonNil(l.password), nil
	}
	return nil, sasl.ErrUnexpectedServerChallenge
}

// sentPassword reports whether the password was handed over; go-smtp sends
// each response as soon as Next returns it.
func (l *loginClient) sentPassword() bool { return l.step >= 2 }

// nonNil returns s as a non-nil slice even when empty: go-smtp ends the
// exchange on a nil response.
func nonNil(s string) []byte {
	b := make([]byte, len(s))
	copy(b, s)
	return b
}
