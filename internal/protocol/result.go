package protocol

import (
	"github.com/credsync/credsync/internal/flow"
	"github.com/credsync/credsync/internal/verify"
)

// txResult is the result of change, sync and propagate (PROTOCOL.md,
// "The transaction's result").
type txResult struct {
	Changed bool  `json:"changed"`
	Stored  bool  `json:"stored"`
	Updated *bool `json:"updated,omitempty"`
	// BreachCheck is the breach check's outcome for a change that asked
	// for it: "not_listed" or "unavailable" (the change went on).
	BreachCheck string `json:"breachCheck,omitempty"`
	txMembers
	// Waited: the change waited for lagging servers (wait.go).
	Waited *waitedJSON `json:"waited,omitempty"`
	// AuditFailed: the audit record could not be written (audit.go).
	AuditFailed bool `json:"auditFailed,omitempty"`
}

// txMembers say what a transaction touched; error replies carry them too.
type txMembers struct {
	Accounts []accountJSON `json:"accounts,omitempty"`
	Logins   []loginJSON   `json:"logins,omitempty"`
	Servers  []serverJSON  `json:"servers,omitempty"`
}

type accountJSON struct {
	ID    string      `json:"id"`
	Name  string      `json:"name"`
	Sides []flow.Side `json:"sides"`
}

type loginJSON struct {
	Origin   string          `json:"origin"`
	Username string          `json:"username"`
	State    flow.LoginState `json:"state"`
}

type serverJSON struct {
	Side     flow.Side      `json:"side"`
	Protocol string         `json:"protocol"`
	Host     string         `json:"host"`
	Port     int            `json:"port"`
	Username string         `json:"username"`
	Outcome  verify.Outcome `json:"outcome"`
	Detail   string         `json:"detail"`
}

func members(accounts []flow.Touched, logins []flow.Written, servers []flow.Checked) txMembers {
	var m txMembers
	for _, a := range accounts {
		m.Accounts = append(m.Accounts, accountJSON{ID: a.ID, Name: truncate(a.Name, maxName), Sides: a.Sides})
	}
	for _, l := range logins {
		m.Logins = append(m.Logins, loginJSON{Origin: l.Origin, Username: l.Username, State: l.State})
	}
	for _, s := range servers {
		m.Servers = append(m.Servers, serverJSON{Side: s.Side, Protocol: string(s.Server.Protocol), Host: s.Server.Host,
			Port: s.Server.Port, Username: s.Server.Username, Outcome: s.Result.Outcome, Detail: truncate(s.Result.Detail, maxDetail)})
	}
	return m
}

// replyOf is a transaction's reply: its result, or its error marked when
// the audit record was not written.
func replyOf(r flow.Result, err error) (txResult, error) {
	if err != nil {
		return txResult{}, noteAudit(err, r.AuditFailed)
	}
	return resultOf(r), nil
}

func resultOf(r flow.Result) txResult {
	return txResult{Changed: r.Changed, Stored: r.Stored, txMembers: members(r.Accounts, r.Logins, r.Servers), Waited: waitedOf(r.Waited), AuditFailed: r.AuditFailed}
}
