package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/credsync/credsync/internal/flow"
)

// secretReader asks for one secret without echo.
type secretReader func(prompt string) (string, error)

// terminalSecret reads a secret from the controlling terminal with echo
// off, prompting on stderr so stdout stays clean for scripts.
func terminalSecret(prompt string) (string, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", errors.New("standard input is not a terminal: pass the password with --password-stdin")
	}
	fmt.Fprint(os.Stderr, prompt)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	return string(b), err
}

// readPasswords returns one password per prompt: from successive lines of
// stdin with --password-stdin, else asked on the terminal.
func readPasswords(stdin io.Reader, fromStdin bool, secret secretReader, prompts ...string) ([]string, error) {
	var lines *bufio.Reader
	if fromStdin {
		lines = bufio.NewReaderSize(io.LimitReader(stdin, int64(len(prompts))*(flow.MaxPassword+2)), 4096)
	}
	passwords := make([]string, 0, len(prompts))
	for _, prompt := range prompts {
		var pw string
		var err error
		if fromStdin {
			pw, err = lines.ReadString('\n')
			if err == io.EOF && pw != "" {
				err = nil
			}
			pw = strings.TrimSuffix(strings.TrimSuffix(pw, "\n"), "\r")
		} else {
			pw, err = secret(prompt)
		}
		switch {
		case err == io.EOF:
			return nil, fmt.Errorf("standard input ended before the %s", strings.ToLower(strings.TrimSuffix(prompt, ": ")))
		case err != nil:
			return nil, err
		case pw == "":
			return nil, fmt.Errorf("the %s is empty", strings.ToLower(strings.TrimSuffix(prompt, ": ")))
		case len(pw) > flow.MaxPassword:
			return nil, fmt.Errorf("the %s is longer than %d bytes", strings.ToLower(strings.TrimSuffix(prompt, ": ")), flow.MaxPassword)
		}
		passwords = append(passwords, pw)
	}
	return passwords, nil
}
