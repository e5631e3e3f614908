package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/deepimageshub/imagehub/account"
	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/problem"
)

// usersCmd: imagehub users create --email E [--name N] [--role R], with the
// password typed at a prompt or piped on standard input.
func usersCmd(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	const usageLine = "usage: imagehub users create --email E [--name N] [--role contributor|reviewer|premium|admin]\n" +
		"       (the password is asked for, or read from standard input when it is not a terminal)"
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprintln(stderr, usageLine)
		return errUsage
	}
	for _, a := range args[1:] {
		if f := strings.TrimLeft(a, "-"); strings.HasPrefix(a, "-") && (f == "password" || strings.HasPrefix(f, "password=")) {
			return errors.New("--password: passwords are not taken on the command line, where shell history and the process list keep them; " +
				"type it at the prompt, or pipe it on standard input")
		}
	}
	fs := flag.NewFlagSet("users create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "email address (required)")
	name := fs.String("name", "", "display name (default: the part of the email before @)")
	role := fs.String("role", string(auth.RoleContributor), "role: contributor, reviewer, premium or admin")
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	if *name == "" {
		*name, _, _ = strings.Cut(*email, "@")
	}
	if !auth.Role(*role).Valid() {
		return errors.New("--role: role must be one of contributor, reviewer, premium, admin")
	}
	password, err := readPassword(stdin, stderr)
	if err != nil {
		return err
	}
	e, err := setup(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer e.pool.Close()
	accounts := account.NewService(e.pool, account.Limits{PasswordCost: e.cfg.PasswordHashCost})
	in := account.SignUp{Email: *email, Password: password, Name: *name}
	u, err := accounts.Create(ctx, in, auth.Role(*role))
	if err != nil {
		return explain(err)
	}
	fmt.Fprintf(stdout, "created %s <%s> with role %s (id %s)\n", u.Name, u.Email, u.Role, u.ID)
	if needsAdmin, err := accounts.NeedsAdmin(ctx); err == nil && needsAdmin {
		fmt.Fprintln(stderr, "note: this hub has no admin yet; make one with: imagehub users create --email E --role admin")
	}
	return nil
}

// readPassword asks for a password without echo when stdin is a terminal
// (twice, to catch typing mistakes), and otherwise reads the first line of
// standard input, so that scripts can pipe it in.
func readPassword(stdin io.Reader, prompt io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		read := func(label string) (string, error) {
			fmt.Fprint(prompt, label)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(prompt)
			if err != nil {
				return "", fmt.Errorf("error reading password: %w", err)
			}
			return string(b), nil
		}
		pw, err := read("Password: ")
		if err != nil {
			return "", err
		}
		again, err := read("Repeat password: ")
		if err != nil {
			return "", err
		}
		if pw != again {
			return "", errors.New("password: the two passwords differ")
		}
		return pw, nil
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("error reading password from standard input: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("password: standard input held no password; type it at the prompt, or pipe it: printf '%s\\n' \"$PW\" | imagehub users create ...")
	}
	return line, nil
}

// tokensCmd: imagehub tokens create --email E --name N [--expires-in-days D].
func tokensCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprintln(stderr, "usage: imagehub tokens create --email E --name N [--expires-in-days D] [--role trainer]")
		return errUsage
	}
	fs := flag.NewFlagSet("tokens create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "the account the token acts for (required)")
	name := fs.String("name", "", "what the token is for (required)")
	days := fs.Int("expires-in-days", 0, "days until it expires (0: never)")
	role := fs.String("role", "", "trainer for a trainer token, which only trains (docs/training.md)")
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	e, err := setup(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer e.pool.Close()
	accounts := account.NewService(e.pool, account.Limits{PasswordCost: e.cfg.PasswordHashCost})
	u, err := accounts.UserByEmail(ctx, *email)
	if err != nil {
		return explain(err)
	}
	in := account.NewToken{Name: *name, Role: *role}
	if *days != 0 {
		in.ExpiresInDays = days
	}
	plain, _, err := accounts.CreateToken(ctx, u.ID, in)
	if err != nil {
		return explain(err)
	}
	// Only the token on stdout, so that scripts can capture it.
	fmt.Fprintln(stdout, plain)
	return nil
}

// explain turns a refusal into a message for the terminal.
func explain(err error) error {
	if p, ok := problem.As(err); ok {
		if p.Field == "password" { // not a flag: read from the prompt or stdin
			return errors.New("password: " + p.Message)
		}
		if p.Field != "" {
			return errors.New("--" + p.Field + ": " + p.Message)
		}
		return errors.New(p.Message)
	}
	return err
}
