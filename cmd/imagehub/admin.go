package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/deepimageshub/imagehub/account"
	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/problem"
)

// usersCmd: imagehub users create --email E --password P [--name N] [--role R].
func usersCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprintln(stderr, "usage: imagehub users create --email E --password P [--name N] [--role contributor|reviewer|premium|admin]")
		return errUsage
	}
	fs := flag.NewFlagSet("users create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "email address (required)")
	password := fs.String("password", "", "password, at least 10 characters (required)")
	name := fs.String("name", "", "display name (default: the part of the email before @)")
	role := fs.String("role", string(auth.RoleContributor), "role: contributor, reviewer, premium or admin")
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	if *name == "" {
		for i, ch := range *email {
			if ch == '@' {
				*name = (*email)[:i]
				break
			}
		}
	}
	e, err := setup(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer e.pool.Close()
	accounts := account.NewService(e.pool, account.Limits{})
	in := account.SignUp{Email: *email, Password: *password, Name: *name}
	u, err := accounts.Create(ctx, in, auth.Role(*role))
	if err != nil {
		return explain(err)
	}
	// The first account is always admin; after that the role is as asked.
	if u.Role != auth.Role(*role) && u.Role != auth.RoleAdmin {
		return fmt.Errorf("user created with role %s, not %s", u.Role, *role)
	}
	fmt.Fprintf(stdout, "created %s <%s> with role %s (id %s)\n", u.Name, u.Email, u.Role, u.ID)
	return nil
}

// tokensCmd: imagehub tokens create --email E --name N [--expires-in-days D].
func tokensCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprintln(stderr, "usage: imagehub tokens create --email E --name N [--expires-in-days D]")
		return errUsage
	}
	fs := flag.NewFlagSet("tokens create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "the account the token acts for (required)")
	name := fs.String("name", "", "what the token is for (required)")
	days := fs.Int("expires-in-days", 0, "days until it expires (0: never)")
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	e, err := setup(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer e.pool.Close()
	accounts := account.NewService(e.pool, account.Limits{})
	u, err := accounts.UserByEmail(ctx, *email)
	if err != nil {
		return explain(err)
	}
	in := account.NewToken{Name: *name}
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
		if p.Field != "" {
			return errors.New("--" + p.Field + ": " + p.Message)
		}
		return errors.New(p.Message)
	}
	return err
}
