package protocol

import (
	"context"
	"log"

	"github.com/credsync/credsync/internal/audit"
	"github.com/credsync/credsync/internal/flow"
)

// auditHook is the engine's audit hook: it writes records with h.Audit,
// naming the flows that came through the local socket, and logs a failure
// (the error names the file and the cause, never a secret: a record holds
// none).
func (h *Host) auditHook(logger *log.Logger) flow.AuditFunc {
	if h.Audit == nil {
		return nil
	}
	return func(ctx context.Context, r audit.Record) error {
		if fromSocket(ctx) && r.Kind == audit.KindSync {
			r.Kind = audit.KindSocketSync
		}
		err := h.Audit(r)
		if err != nil {
			logger.Printf("could not write the audit log (the %s flow of %s ended %s regardless): %v", r.Kind, r.Account, r.Outcome, err)
		}
		return err
	}
}

type socketKey struct{}

// withSocket marks ctx as serving a local-socket request.
func withSocket(ctx context.Context) context.Context {
	return context.WithValue(ctx, socketKey{}, true)
}

func fromSocket(ctx context.Context) bool {
	v, _ := ctx.Value(socketKey{}).(bool)
	return v
}

// auditFailedError is a flow's error whose audit record could not be
// written: its reply says "auditFailed": true.
type auditFailedError struct{ error }

func (e auditFailedError) Unwrap() error { return e.error }

// noteAudit marks err when the flow's audit record was not written.
func noteAudit(err error, failed bool) error {
	if failed {
		return auditFailedError{err}
	}
	return err
}
