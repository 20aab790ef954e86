package verify

import (
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-smtp"

	"github.com/credsync/credsync/internal/redact"
)

// Hooks for the external test package (fuzz targets).

// Stages, as ints for fuzzing.
const (
	StageConnect = int(stageConnect)
	StageTLS     = int(stageTLS)
	StageAuth    = int(stageAuth)
)

func ParsePOP3Reply(line string) (ok bool, code, text string, err error) {
	r, err := parsePOP3Reply(line)
	return r.OK, r.Code, r.Text, err
}

// ClassifyIMAP classifies a tagged IMAP status reply.
func ClassifyIMAP(typ, code, text string, st int, plain bool) (Outcome, string) {
	err := &imap.Error{Type: imap.StatusResponseType(typ), Code: imap.ResponseCode(code), Text: text}
	return classify(err, stage(st), plain), oneLine(detailOf(err))
}

// ClassifySMTP classifies an SMTP reply.
func ClassifySMTP(code int, enh [3]int, msg string, st int, plain bool) (Outcome, string) {
	err := &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode(enh), Message: msg}
	return classify(err, stage(st), plain), oneLine(detailOf(err))
}

// ClassifyPOP3 classifies an -ERR line in reply to cmd.
func ClassifyPOP3(cmd, line string, plain bool) (Outcome, string, error) {
	r, err := parsePOP3Reply(line)
	if err != nil {
		return "", "", err
	}
	if r.OK {
		return OK, "", nil
	}
	pe := &pop3Error{Cmd: cmd, Line: line, Code: r.Code, Text: r.Text}
	return classify(pe, stageAuth, plain), oneLine(detailOf(pe)), nil
}

// Scrub is scrubResult on a Detail.
func Scrub(detail, password string) string {
	return scrubResult(Result{Outcome: AuthFailed, Detail: detail}, redact.New(password), true).Detail
}
