//go:build !windows

package tbharness

import (
	"context"
	"time"
)

// SMTPLogon makes Thunderbird's own SMTP client (SmtpClient, the one
// verifyLogon and sending use) connect to the account's outgoing server and
// authenticate with the saved password, then QUIT; it waits (up to timeout)
// for the outcome. Unlike verifyLogon, whose listener waits for an event
// that a successful AUTH never emits (notes §9), it reports success (Code
// 0) once the client is idle after AUTH, and it ends the session, so the
// server logs it as a complete one.
func (tb *TB) SMTPLogon(ctx context.Context, smtpKey string, timeout time.Duration) (LogonResult, error) {
	var r LogonResult
	err := tb.Chrome(ctx, `
const [key, timeoutMs] = arguments;
const { SmtpClient } = ChromeUtils.importESModule("resource:///modules/SmtpClient.sys.mjs");
const out = MailServices.outgoingServer.getServerByKey(key);
if (!out) throw new Error("no outgoing server " + key);
try { out.closeCachedConnections(); } catch (e) {}
const server = out.wrappedJSObject || out;
return await new Promise(resolve => {
  const client = new SmtpClient(server);
  const timer = setTimeout(() => { try { client.close(true); } catch (e) {} resolve({ code: -1, timedOut: true }); }, timeoutMs);
  client.onidle = () => { clearTimeout(timer); client.quit(); resolve({ code: 0, timedOut: false }); };
  client.onerror = nsError => { clearTimeout(timer); resolve({ code: Number(nsError) || 1, timedOut: false }); };
  client.connect();
});`, []any{smtpKey, timeout.Milliseconds()}, &r)
	return r, err
}
