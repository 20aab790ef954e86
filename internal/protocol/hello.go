package protocol

import (
	"context"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/provider"
)

type helloResult struct {
	Name         string          `json:"name"`
	Version      string          `json:"version"`
	Protocol     int             `json:"protocol"`
	Capabilities []string        `json:"capabilities"`
	Backends     []provider.Info `json:"backends"`
	// PasswordAuthMethods are the authMethod values a password verifies;
	// the popup greys out other accounts (the host decides again).
	PasswordAuthMethods []endpoint.AuthMethod `json:"passwordAuthMethods"`
}

// hello tells the extension who answers and what it can do.
func hello(_ context.Context, s *session, _ string, _ gjson.Result) (any, error) {
	return helloResult{
		Name:                "credsync",
		Version:             s.host.Version,
		Protocol:            Version,
		Capabilities:        []string{"verify", "check", "plan", "change", "sync", "propagate", "cancel", "expiry"},
		Backends:            provider.All(),
		PasswordAuthMethods: endpoint.PasswordMethods(),
	}, nil
}
