//go:build !release

// The token command is for make run's local stand-in only: the image's
// binaries are built with -tags release and lack it (Dockerfile).

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

func init() {
	// Listed after send, the other command for trying clerksync out.
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == "send" }) + 1
	commands = slices.Insert(commands, i, command{"token", "print a session token from make run's local Clerk stand-in (for trying ensure)",
		func(ctx context.Context, args []string, stdout io.Writer, _ *slog.Logger) error {
			return token(ctx, args, stdout)
		}})
}

// defaultDevClerk is where make run serves its local Clerk stand-in
// (internal/devclerk).
const defaultDevClerk = "http://127.0.0.1:8082"

// token prints a session token for a Clerk user from make run's local Clerk
// stand-in, so ensure can be tried with curl. A real Clerk instance issues
// tokens only to signed-in users, in the browser.
func token(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var (
		clerkURL  = fs.String("clerk", devClerkURL(os.Getenv("CLERK_API_URL")), "the local Clerk stand-in (default: CLERK_API_URL when it is on loopback, else make run's)")
		email     = fs.String("email", "", "email address the stand-in gives the user if it is new")
		firstName = fs.String("first-name", "", "first name the stand-in gives the user if it is new")
		lastName  = fs.String("last-name", "", "last name the stand-in gives the user if it is new")
	)
	fs.Usage = func() {
		fmt.Fprint(stdout, `Usage: starter token [flags] <clerk_user_id>

Prints a session token for the user, signed by make run's local Clerk
stand-in (which make run starts when CLERK_SECRET_KEY is not set), for
POST /v1/users/ensure:

  curl -X POST -H "Authorization: Bearer $(go run ./starter token user_x)" http://127.0.0.1:8080/v1/users/ensure

The stand-in creates the user, with the profile given by the flags, if it
does not know it yet. Against a real Clerk instance, take a session token
from your frontend instead (Clerk's getToken()).

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("token takes exactly one Clerk user ID")
	}
	body, err := json.Marshal(map[string]string{"sub": fs.Arg(0), "email": *email, "first_name": *firstName, "last_name": *lastName})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(*clerkURL, "/")+"/dev/tokens", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("no local Clerk stand-in answers at %s (make run starts one when CLERK_SECRET_KEY is not set): %w", *clerkURL, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s refused: %s %s", *clerkURL, resp.Status, strings.TrimSpace(string(answer)))
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(answer, &out); err != nil || out.Token == "" {
		return fmt.Errorf("%s is not a local Clerk stand-in (its answer has no token)", *clerkURL)
	}
	_, err = fmt.Fprintln(stdout, out.Token)
	return err
}

// devClerkURL is the stand-in's base URL: CLERK_API_URL's host when it is a
// loopback http URL (make run's), else make run's default.
func devClerkURL(apiURL string) string {
	u, err := url.Parse(apiURL)
	if err != nil || u.Scheme != "http" || !loopbackHost(u.Hostname()) {
		return defaultDevClerk
	}
	return "http://" + u.Host
}
