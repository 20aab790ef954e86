package protocol

import (
	"context"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/verify"
)

// verifyTimeout bounds a verify request's two logins.
const verifyTimeout = 30 * time.Second

// maxDetail bounds a server's text in a reply.
const maxDetail = 512

type sideResult struct {
	Outcome verify.Outcome `json:"outcome"`
	Detail  string         `json:"detail"`
}

func side(r *verify.Result) *sideResult {
	if r == nil {
		return nil
	}
	return &sideResult{Outcome: r.Outcome, Detail: truncate(r.Detail, maxDetail)}
}

type verifyResult struct {
	Verified bool        `json:"verified"`
	Incoming *sideResult `json:"incoming,omitempty"`
	Outgoing *sideResult `json:"outgoing,omitempty"`
}

type verifyArgs struct {
	incoming, outgoing *endpoint.Endpoint
	password           string
}

func decodeVerify(req gjson.Result) (verifyArgs, error) {
	var a verifyArgs
	var err *Error
	if a.incoming, err = endpointMember(req, "incoming", endpoint.IMAP, endpoint.POP3); err != nil {
		return a, err
	}
	if a.outgoing, err = endpointMember(req, "outgoing", endpoint.SMTP); err != nil {
		return a, err
	}
	if a.incoming == nil && a.outgoing == nil {
		return a, invalid("incoming", `give "incoming", "outgoing" or both`)
	}
	if a.password, err = password(req, "password", false); err != nil {
		return a, err
	}
	return a, nil
}

// verifyRequest logs in once to each given server with the password.
func verifyRequest(ctx context.Context, s *session, _ string, req gjson.Result) (any, error) {
	a, err := decodeVerify(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, verifyTimeout)
	defer cancel()
	inResult, outResult := verify.Both(ctx, a.incoming, a.outgoing, a.password, s.host.Trust)
	result := verifyResult{Verified: true}
	if a.incoming != nil {
		result.Incoming = side(&inResult)
		result.Verified = inResult.Outcome == verify.OK
	}
	if a.outgoing != nil {
		result.Outgoing = side(&outResult)
		result.Verified = result.Verified && outResult.Outcome == verify.OK
	}
	return result, nil
}
