//go:build !windows

// Command credsync-demo shows the whole product working: a real, headless
// Thunderbird with the credsync extension changes a mailbox password at a
// sandbox provider through the extension's own popup, and then logs in to
// the sandbox's IMAP and SMTP servers with the new password without asking.
//
//	credsync-demo --credsync bin/credsync-sandbox --extension bin/credsync.xpi
//
// It builds nothing: `make demo` builds the host (and the .xpi) first, with
// the build tag "sandbox" that adds the sandbox back-end (release builds
// leave it out). All
// servers listen on 127.0.0.1; nothing leaves the machine; passwords are
// printed masked.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/testkit/tbharness"
)

const (
	demoUser = "demo"
	oldPW    = "Winter-2025-garden"
	newPW    = "Summer-2026-harbour"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	credsync    string
	extension   string
	thunderbird string
	keep        bool
	verbose     bool
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("credsync-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.credsync, "credsync", "bin/credsync-sandbox", "the credsync host `binary` to register, built with -tags sandbox")
	fs.StringVar(&o.extension, "extension", "bin/credsync.xpi", "the add-on to install: the .xpi (`make xpi`), or a `directory` (without the popup's strength estimator)")
	fs.StringVar(&o.thunderbird, "thunderbird", "", "Thunderbird `executable or directory` (default /usr/bin/thunderbird; a dpkg -x directory for 140)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary HOME, profile and Thunderbird log")
	fs.BoolVar(&o.verbose, "v", false, "print the harness's own progress lines")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: credsync-demo [--credsync PATH] [--extension DIR|XPI] [--thunderbird PATH] [--keep] [-v]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()

	d := &demo{out: stdout, opts: o}
	err := d.run(ctx)
	d.cleanup()
	if err != nil {
		fmt.Fprintf(stdout, "\nFAILED: %v\n", err)
		if d.tb != nil {
			fmt.Fprintf(stdout, "Thunderbird's log: %s\n", d.tb.LogPath)
		}
		return 1
	}
	fmt.Fprintln(stdout, "\nResult: OK — the password was changed once and Thunderbird follows it without asking.")
	return 0
}

type demo struct {
	out   io.Writer
	opts  options
	step  int
	state string
	sb    *sandbox.Sandbox
	tb    *tbharness.TB
	start time.Time
}

func (d *demo) say(format string, args ...any) {
	d.step++
	fmt.Fprintf(d.out, "%2d. %s\n", d.step, fmt.Sprintf(format, args...))
}

func (d *demo) detail(format string, args ...any) {
	fmt.Fprintf(d.out, "    %s\n", fmt.Sprintf(format, args...))
}

func (d *demo) cleanup() {
	if d.tb != nil {
		if err := d.tb.Close(); err != nil {
			fmt.Fprintf(d.out, "warning: %v\n", err)
		}
	}
	if d.sb != nil {
		d.sb.Close()
	}
	if d.state != "" {
		if d.opts.keep {
			fmt.Fprintf(d.out, "Kept %s (HOME, profile, thunderbird.log).\n", d.state)
		} else {
			os.RemoveAll(d.state)
		}
	}
}

func (d *demo) run(ctx context.Context) error {
	d.start = time.Now()
	fmt.Fprintln(d.out, "credsync demo: a real Thunderbird changes a mail password end to end (all on 127.0.0.1)")
	fmt.Fprintln(d.out)

	host, err := filepath.Abs(d.opts.credsync)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(host); err != nil || fi.IsDir() {
		return fmt.Errorf("no credsync binary at %s (run `make demo`, or pass --credsync)", host)
	}
	if err := hasSandboxBackend(ctx, host); err != nil {
		return err
	}
	ext, err := filepath.Abs(d.opts.extension)
	if err != nil {
		return err
	}
	if _, err := os.Stat(ext); err != nil {
		return fmt.Errorf("no extension at %s (pass --extension DIR or .xpi)", ext)
	}
	bin, err := tbharness.FindBinary(d.opts.thunderbird)
	if err != nil {
		return fmt.Errorf("%v (run scripts/thunderbird as root to install it)", err)
	}

	// 1. The provider.
	d.sb, err = sandbox.Start(sandbox.Options{Users: map[string]string{demoUser: oldPW}})
	if err != nil {
		return err
	}
	d.say("Started a sandbox mail provider: IMAP %s, SMTP %s (TLS, throw-away CA), password change %s",
		d.sb.IMAPS, d.sb.SMTPS, d.sb.ChangeURL)
	d.detail("mailbox %q, current password %s", demoUser, tbharness.Mask(oldPW))

	// 2. A fresh HOME with the host registered.
	d.state, err = os.MkdirTemp("", "credsync-demo-")
	if err != nil {
		return err
	}
	home := filepath.Join(d.state, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, host, "install", "--home", home).CombinedOutput()
	if err != nil {
		return fmt.Errorf("credsync install --home %s: %v\n%s", home, err, out)
	}
	d.say("Registered the native-messaging host for a fresh HOME: credsync install --home %s", home)
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(l, "ok:") {
			d.detail("%s", l)
		}
	}
	caFile := filepath.Join(d.state, "sandbox-ca.pem")
	if err := d.sb.WriteCA(caFile); err != nil {
		return err
	}

	// 3. Thunderbird.
	logf := func(string, ...any) {}
	if d.opts.verbose {
		logf = func(f string, a ...any) { d.detail("[harness] "+f, a...) }
	}
	d.tb, err = tbharness.Launch(ctx, tbharness.Options{
		Binary:   d.opts.thunderbird,
		StateDir: d.state,
		Home:     home,
		Env:      []string{"SSL_CERT_FILE=" + caFile},
		Logf:     logf,
	})
	if err != nil {
		return err
	}
	d.say("Started %s headless with a fresh profile (ready in %s)", bin, d.tb.StartDuration.Round(100*time.Millisecond))
	if _, err := d.tb.ImportCA(ctx, d.sb.CAPEM); err != nil {
		return err
	}
	d.detail("the sandbox CA is trusted by Thunderbird (certificate database) and by the host (SSL_CERT_FILE)")

	// 4. The account, with its old password saved.
	h, imapPort := splitAddr(d.sb.IMAPS)
	_, smtpPort := splitAddr(d.sb.SMTPS)
	acct, err := d.tb.CreateAccount(ctx, tbharness.AccountSpec{
		Type:     "imap",
		Email:    "demo@example.test",
		FullName: "Demo User",
		Incoming: tbharness.ServerSpec{Host: h, Port: imapPort, SocketType: tbharness.SocketSSL,
			AuthMethod: tbharness.AuthPasswordCleartext, Username: demoUser, Password: oldPW},
		SMTP: &tbharness.ServerSpec{Host: h, Port: smtpPort, SocketType: tbharness.SocketSSL,
			AuthMethod: tbharness.AuthPasswordCleartext, Username: demoUser, Password: oldPW},
	})
	if err != nil {
		return err
	}
	d.say("Created the IMAP account %s (demo@example.test) with its SMTP server; the old password is saved", acct.Key)
	if err := d.thunderbirdLogsIn(ctx, acct, oldPW); err != nil {
		return fmt.Errorf("before the change: %w", err)
	}
	d.detail("Thunderbird logs in to IMAP and SMTP with the old password")
	before, err := d.tb.Logins(ctx)
	if err != nil {
		return err
	}
	markHost := len(d.sb.Logins())

	// 5. The extension.
	id, err := d.tb.InstallAddon(ctx, ext)
	if err != nil {
		return fmt.Errorf("installing the extension %s: %w", ext, err)
	}
	st, err := d.tb.Addon(ctx, id)
	if err != nil {
		return err
	}
	if !st.Active {
		return fmt.Errorf("the extension %s is installed but not active", id)
	}
	d.say("Installed the credsync extension %s %s (temporary add-on)", id, st.Version)

	// 6. The popup.
	popup, err := d.tb.OpenPopup(ctx, id)
	if err != nil {
		return err
	}
	d.say("Opened the extension's popup page %s in a Thunderbird tab", popup.URL)
	if err := popup.SetBackend(ctx, acct.Key, "sandbox", d.sb.ChangeURL); err != nil {
		return err
	}
	d.detail("chose the back-end for %s: sandbox at %s", acct.Key, d.sb.ChangeURL)

	// 7. The change.
	d.say("Typed the current password %s and the new password %s (twice) and clicked Change",
		tbharness.Mask(oldPW), tbharness.Mask(newPW))
	if err := popup.Select(ctx, acct.Key); err != nil {
		return err
	}
	if m, err := popup.TypeNew(ctx, newPW, time.Minute); err != nil {
		d.detail("the strength meter: %v", err)
	} else {
		d.detail("the strength meter under the new password: %s (estimated in the popup, never sent)", m.Word)
	}
	changeStart := time.Now()
	o, err := popup.Change(ctx, acct.Key, oldPW, newPW, 2*time.Minute)
	if err != nil {
		return err
	}
	for _, step := range []string{"policy", "changing", "checking_incoming", "checking_outgoing", "saving"} {
		if state, ok := o.Steps[step]; ok {
			d.detail("%-20s %s", stepName(step)+":", state)
		}
	}
	d.detail("the popup says (after %s): %s", time.Since(changeStart).Round(10*time.Millisecond), o.Text)
	if o.Kind != "success" {
		return fmt.Errorf("the popup reports a failure: %s", o.Text)
	}
	after, err := d.tb.Logins(ctx)
	if err != nil {
		return err
	}
	markAfter := len(d.sb.Logins())

	fmt.Fprintln(d.out, "\nThunderbird's saved logins before the change:")
	printLogins(d.out, before)
	fmt.Fprintln(d.out, "and after it:")
	printLogins(d.out, after)
	for _, origin := range []string{acct.IncomingOrigin, acct.SMTPOrigin} {
		found := false
		for _, l := range after {
			if l.Origin == origin && l.Username == demoUser {
				found = true
				if l.Password != newPW {
					return fmt.Errorf("the saved login %s does not hold the new password", origin)
				}
			}
		}
		if !found {
			return fmt.Errorf("no saved login %s after the change", origin)
		}
	}

	// 8. Thunderbird uses it.
	fmt.Fprintln(d.out)
	d.say("Made Thunderbird log in again by itself (IMAP verifyLogon, SMTP verifyLogon)")
	if err := d.thunderbirdLogsIn(ctx, acct, newPW); err != nil {
		return fmt.Errorf("after the change: %w", err)
	}
	fmt.Fprintln(d.out, "\nWhat the sandbox servers saw, in order:")
	for i, l := range d.sb.Logins() {
		verdict := "accepted"
		if !l.OK {
			verdict = "REJECTED"
		}
		who := "Thunderbird, before the change"
		switch {
		case i >= markAfter:
			who = "Thunderbird, after the change"
		case i >= markHost && l.Protocol == "expiry":
			who = "credsync, reading when the new password expires"
		case i >= markHost:
			who = "credsync host, checking the new password"
		}
		fmt.Fprintf(d.out, "    %-6s  user %-6s  password %s (%s)  %-8s  by %s\n",
			l.Protocol, l.Username, tbharness.Mask(l.Password), passwordName(l.Password), verdict, who)
	}
	ps, err := d.tb.Prompts(ctx)
	if err != nil {
		return err
	}
	if len(ps) > 0 {
		return fmt.Errorf("a password prompt appeared in Thunderbird: %q %q", ps[0].Title, ps[0].Text)
	}
	fmt.Fprintln(d.out, "No password prompt appeared in Thunderbird at any point.")
	fmt.Fprintf(d.out, "Total time %s.\n", time.Since(d.start).Round(100*time.Millisecond))
	return nil
}

// thunderbirdLogsIn makes Thunderbird log in to both servers and checks that
// the sandbox accepted exactly pw from it, and that no prompt opened.
func (d *demo) thunderbirdLogsIn(ctx context.Context, acct tbharness.Account, pw string) error {
	if err := d.tb.ClearPrompts(ctx); err != nil {
		return err
	}
	mark := len(d.sb.Logins())
	r, err := d.tb.VerifyIncoming(ctx, acct.Key, 30*time.Second)
	if err != nil {
		return err
	}
	if r.TimedOut || r.Code != 0 {
		return fmt.Errorf("the IMAP login by Thunderbird failed (%+v)", r)
	}
	if err := d.tb.TriggerSMTPLogon(ctx, acct.SMTPKey); err != nil {
		return err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var imapOK, smtpOK bool
		for _, l := range d.sb.Logins()[mark:] {
			if l.Password != pw || !l.OK {
				return fmt.Errorf("the %[2]s server %[3]s the %[1]s Thunderbird sent", passwordName(l.Password), l.Protocol, map[bool]string{true: "accepted", false: "rejected"}[l.OK])
			}
			imapOK = imapOK || l.Protocol == "imap"
			smtpOK = smtpOK || l.Protocol == "smtp"
		}
		if imapOK && smtpOK {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no login by Thunderbird to both servers within 20 s (IMAP %v, SMTP %v)", imapOK, smtpOK)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	ps, err := d.tb.Prompts(ctx)
	if err != nil {
		return err
	}
	if len(ps) > 0 {
		return fmt.Errorf("a prompt appeared in Thunderbird: %q %q", ps[0].Title, ps[0].Text)
	}
	return nil
}

func passwordName(pw string) string {
	switch pw {
	case oldPW:
		return "old password"
	case newPW:
		return "new password"
	}
	return "another password"
}

func stepName(step string) string {
	return map[string]string{
		"policy":            "password rules",
		"changing":          "change at provider",
		"checking_incoming": "check IMAP login",
		"checking_outgoing": "check SMTP login",
		"saving":            "save in Thunderbird",
	}[step]
}

func printLogins(w io.Writer, ls []tbharness.Login) {
	if len(ls) == 0 {
		fmt.Fprintln(w, "    (none)")
		return
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Origin < ls[j].Origin })
	for _, l := range ls {
		fmt.Fprintf(w, "    %-20s  user %-6s  password %s (%s)\n", l.Origin, l.Username, tbharness.Mask(l.Password), passwordName(l.Password))
	}
}

func splitAddr(addr string) (string, int) {
	h, p, _ := strings.Cut(addr, ":")
	n, _ := strconv.Atoi(p)
	return h, n
}

// hasSandboxBackend checks that host lists the sandbox back-end, which only
// builds with the tag "sandbox" hold (a release binary does not).
func hasSandboxBackend(ctx context.Context, host string) error {
	out, err := exec.CommandContext(ctx, host, "backends").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s backends: %v\n%s", host, err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if l == "sandbox" {
			return nil
		}
	}
	return fmt.Errorf("%s has no sandbox back-end: build it with -tags sandbox (`make demo` does)", host)
}
