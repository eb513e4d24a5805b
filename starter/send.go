package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/clerksync/clerksync/internal/clerkwebhook"
	"github.com/clerksync/clerksync/internal/config"
)

// send signs a Clerk user webhook with CLERK_WEBHOOK_SECRET and POSTs it, so
// an operator can try a deployment end to end without Clerk.
func send(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var (
		url       = fs.String("url", localURL(os.Getenv("HTTP_ADDR"), config.DefaultHTTPAddr)+"/webhooks/clerk", "webhook endpoint (default: the starter HTTP_ADDR names, on this machine)")
		eventType = fs.String("type", "user.created", "user.created, user.updated or user.deleted")
		clerkID   = fs.String("id", "", "Clerk user ID (default: a new user_... ID)")
		email     = fs.String("email", "", "primary email address (default: none)")
		firstName = fs.String("first-name", "", "first name (default: none)")
		lastName  = fs.String("last-name", "", "last name (default: none)")
		file      = fs.String("file", "", "send this JSON body instead of building one")
	)
	fs.Usage = func() {
		fmt.Fprint(stdout, "Usage: starter send [flags]\n\nSigns a Clerk user webhook with CLERK_WEBHOOK_SECRET and POSTs it.\nThe version (data.updated_at) is now, so a later send wins. Each send is a\nfull snapshot of the user built from these flags, as Clerk sends one: a\nfield left out is sent empty (a user.updated without --email clears the\nemail), and Clerk's created_at is the time of the send.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	secret := strings.Fields(cfg.WebhookSecret)
	if len(secret) == 0 {
		return errors.New("CLERK_WEBHOOK_SECRET is not set: send signs with it")
	}
	if *clerkID == "" {
		*clerkID = "user_" + rand.Text()
	}
	now := time.Now()
	var body []byte
	switch {
	case *file != "":
		body, err = os.ReadFile(*file)
	case *eventType == "user.deleted":
		body, err = clerkwebhook.DeletedEvent(*clerkID, now)
	case *eventType == "user.created" || *eventType == "user.updated":
		body, err = clerkwebhook.UserEvent(*eventType, clerkwebhook.UserFields{
			ClerkID: *clerkID, Email: *email, FirstName: *firstName, LastName: *lastName,
			CreatedAt: now, UpdatedAt: now,
		})
	default:
		return fmt.Errorf("--type %q: want user.created, user.updated or user.deleted", *eventType)
	}
	if err != nil {
		return err
	}
	headers, err := clerkwebhook.Sign(secret[0], "msg_"+rand.Text(), now, body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, *url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header = headers
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", *url, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Fprintf(stdout, "%s %s\n%s", resp.Status, *clerkID, answer)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("endpoint answered %s", resp.Status)
	}
	return nil
}
