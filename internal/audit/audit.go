// Package audit keeps credsync's audit log: one JSON line per password
// flow (change, sync, sync from the local socket), appended to a file in
// the user's state directory. A record never holds a password: Record has
// no field that could carry one.
package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// Kinds of flow.
const (
	KindChange     = "change"      // change at the provider
	KindSync       = "sync"        // "I already changed it", from the extension
	KindSocketSync = "socket-sync" // `credsync sync`, through the local socket
	KindPropagate  = "propagate"   // a password Thunderbird saved, followed
)

// Outcomes other than an error code (PROTOCOL.md).
const (
	// OutcomeStored: the password is verified and stored in Thunderbird.
	OutcomeStored = "stored"
	// OutcomeChanged: changed at the provider and verified, with no
	// Thunderbird to store it in (a change from the command line).
	OutcomeChanged = "changed"
)

// Step is one step of a flow with the last state it reached.
type Step struct {
	Step  string `json:"step"`
	State string `json:"state"`
}

// Record is one finished flow.
type Record struct {
	// Time is when the flow ended; written in UTC, to the second.
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
	// Account is Thunderbird's account key (MailAccount.id).
	Account string `json:"account"`
	// Login is username@host of the incoming server (of the outgoing one
	// for an account without incoming server).
	Login string `json:"login"`
	Steps []Step `json:"steps"`
	// Outcome is OutcomeStored, OutcomeChanged or the flow's error code.
	Outcome string `json:"outcome"`
	// Changed: the provider has the new password.
	Changed bool `json:"changed"`
	// Accounts are the keys of every account whose logins the flow was to
	// write (the one transaction covers them all).
	Accounts []string `json:"accounts,omitempty"`
}

// maxLine bounds one record, to keep every append a single small write.
const maxLine = 64 << 10

// Log appends records to a file. It is safe for concurrent use.
type Log struct {
	// Path is the log file; "" means DefaultPath().
	Path string

	mu sync.Mutex
	// open opens the file for one append; tests replace it.
	open func(path string) (io.WriteCloser, error)
}

// Write appends r as one JSON line, in a single write to a file opened with
// O_APPEND (mode 0600, in a directory created with mode 0700). The file is
// opened for each record, so a log moved away is simply started again.
func (l *Log) Write(r Record) error {
	r.Time = r.Time.UTC().Truncate(time.Second)
	if r.Steps == nil {
		r.Steps = []Step{}
	}
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if len(line) >= maxLine {
		return fmt.Errorf("audit record of %d bytes is too large", len(line))
	}
	line = append(line, '\n')

	l.mu.Lock()
	defer l.mu.Unlock()
	path := l.Path
	if path == "" {
		if path, err = DefaultPath(); err != nil {
			return err
		}
	}
	open := l.open
	if open == nil {
		open = openAppend
	}
	f, err := open(path)
	if err != nil {
		return err
	}
	n, err := f.Write(line)
	if err == nil && n != len(line) {
		err = io.ErrShortWrite
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// openAppend (audit_unix.go, audit_windows.go) opens the log for one
// append, and refuses a log that could be redirected: a symbolic link (or
// a Windows reparse point), a hard link, anything but a regular file, a
// file or (on Unix) a directory owned by someone else, a directory others
// may write to once credsync has tried to make it private again. The
// refusal is Write's error: the flow's reply says auditFailed.

// checkDir is the rule for the log's directory on Unix: owned by the user
// (euid) and writable by no one else. uid and perm are the directory's,
// after credsync tried to make it private again.
func checkDir(uid uint32, euid int, perm fs.FileMode) error {
	if int64(uid) != int64(euid) {
		return fmt.Errorf("the directory is owned by uid %d, not by this user (uid %d): refusing to write in it", uid, euid)
	}
	if perm&0o022 != 0 {
		return fmt.Errorf("the directory is writable by group or others (mode %04o) and could not be made private: refusing to write in it", perm)
	}
	return nil
}

// checkFile is the rule for the opened log file on Unix: a regular file,
// owned by the user, with no other link.
func checkFile(mode fs.FileMode, uid uint32, euid int, links uint64) error {
	switch {
	case !mode.IsRegular():
		return fmt.Errorf("the log is not a regular file (%v): refusing to write to it", mode.Type())
	case int64(uid) != int64(euid):
		return fmt.Errorf("the log is owned by uid %d, not by this user (uid %d): refusing to write to it", uid, euid)
	case links != 1:
		return fmt.Errorf("the log has %d links (a hard link elsewhere): refusing to write to it", links)
	}
	return nil
}

// DefaultPath is the audit log of the current user:
// $XDG_STATE_HOME/credsync/audit.log (default ~/.local/state/credsync/) on
// Linux and other Unix systems, ~/Library/Application Support/credsync/ on
// macOS, %LOCALAPPDATA%\credsync\ on Windows.
func DefaultPath() (string, error) {
	return defaultPath(runtime.GOOS, os.Getenv, os.UserHomeDir)
}

func defaultPath(goos string, getenv func(string) string, home func() (string, error)) (string, error) {
	const name = "audit.log"
	switch goos {
	case "windows":
		d := getenv("LOCALAPPDATA")
		if d == "" {
			return "", errors.New("audit log: LOCALAPPDATA is not set")
		}
		return filepath.Join(d, "credsync", name), nil
	case "darwin", "ios":
		h, err := home()
		if err != nil {
			return "", fmt.Errorf("audit log: %w", err)
		}
		return filepath.Join(h, "Library", "Application Support", "credsync", name), nil
	}
	if d := getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "credsync", name), nil
	}
	h, err := home()
	if err != nil {
		return "", fmt.Errorf("audit log: %w", err)
	}
	return filepath.Join(h, ".local", "state", "credsync", name), nil
}

// Tail reads a log and returns its last n records (all of them when n <= 0),
// oldest first, and how many lines could not be read as records.
func Tail(r io.Reader, n int) (records []Record, bad int, err error) {
	lines := bufio.NewScanner(r)
	lines.Buffer(make([]byte, 0, 4096), maxLine)
	for lines.Scan() {
		if len(lines.Bytes()) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(lines.Bytes(), &rec); err != nil {
			bad++
			continue
		}
		records = append(records, rec)
		if n > 0 && len(records) > 2*n {
			records = append(records[:0:0], records[len(records)-n:]...)
		}
	}
	if n > 0 && len(records) > n {
		records = records[len(records)-n:]
	}
	return records, bad, lines.Err()
}
