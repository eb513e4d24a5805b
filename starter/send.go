package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
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
		eventType = fs.String("type", "user.created", "user.created, user.updated, user.deleted, organization.created, .updated, .deleted, organizationMembership.created, .updated or .deleted")
		clerkID   = fs.String("id", "", "Clerk user ID, the member's for a membership (default: a new user_... ID)")
		orgID     = fs.String("org", "", "organization ID, org_... (organization and membership events)")
		orgName   = fs.String("name", "", "organization name (organization and membership events)")
		slug      = fs.String("slug", "", "organization slug (default: from --name)")
		memberID  = fs.String("membership", "", "membership ID, orgmem_... (default: a new one)")
		role      = fs.String("role", "org:member", "membership role")
		email     = fs.String("email", "", "primary email address (default: none)")
		firstName = fs.String("first-name", "", "first name (default: none)")
		lastName  = fs.String("last-name", "", "last name (default: none)")
		username  = fs.String("username", "", "username (default: none)")
		external  = fs.String("external-id", "", "external_id: your own row's key, for a row from before Clerk (default: none)")
		metadata  [3]string // public, private, unsafe: JSON objects
		file      = fs.String("file", "", "send this JSON body instead of building one")
	)
	fs.StringVar(&metadata[0], "public-metadata", "", `public_metadata, a JSON object: '{"role":"admin"}' (default: {})`)
	fs.StringVar(&metadata[1], "private-metadata", "", "private_metadata, a JSON object (default: {})")
	fs.StringVar(&metadata[2], "unsafe-metadata", "", "unsafe_metadata, a JSON object (default: {})")
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
	var objects [3]json.RawMessage
	for i, name := range []string{"public", "private", "unsafe"} {
		if metadata[i] == "" {
			continue
		}
		var object map[string]any
		if err := json.Unmarshal([]byte(metadata[i]), &object); err != nil || object == nil {
			return fmt.Errorf("--%s-metadata %s: want a JSON object, as Clerk's metadata is ({\"role\":\"admin\"})", name, metadata[i])
		}
		objects[i] = json.RawMessage(metadata[i])
	}
	if *clerkID == "" {
		*clerkID = "user_" + rand.Text()
	}
	if *memberID == "" {
		*memberID = "orgmem_" + rand.Text()
	}
	if *slug == "" {
		*slug = strings.ToLower(strings.Join(strings.Fields(*orgName), "-"))
	}
	now := time.Now()
	org := clerkwebhook.OrganizationFields{ClerkID: *orgID, Name: *orgName, Slug: *slug, CreatedAt: now, UpdatedAt: now}
	subject := *clerkID
	if strings.HasPrefix(*eventType, "organization") {
		if !strings.HasPrefix(*orgID, "org_") {
			return fmt.Errorf("--type %s needs --org org_<id>", *eventType)
		}
		subject = *orgID
	}
	var body []byte
	switch {
	case *file != "":
		body, err = os.ReadFile(*file)
	case *eventType == "user.deleted":
		body, err = clerkwebhook.DeletedEvent(*clerkID, now)
	case *eventType == "user.created" || *eventType == "user.updated":
		body, err = clerkwebhook.UserEvent(*eventType, clerkwebhook.UserFields{
			ClerkID: *clerkID, Email: *email, FirstName: *firstName, LastName: *lastName, Username: *username,
			ExternalID: *external, PublicMetadata: objects[0], PrivateMetadata: objects[1], UnsafeMetadata: objects[2],
			CreatedAt: now, UpdatedAt: now,
		})
	case *eventType == "organization.created" || *eventType == "organization.updated":
		body, err = clerkwebhook.OrganizationEvent(*eventType, org)
	case *eventType == "organization.deleted":
		body, err = clerkwebhook.OrganizationDeletedEvent(*orgID, *slug, now)
	case strings.HasPrefix(*eventType, "organizationMembership."):
		body, err = clerkwebhook.MembershipEvent(*eventType, clerkwebhook.MembershipFields{
			ClerkID: *memberID, UserID: *clerkID, Role: *role, Organization: org, CreatedAt: now, UpdatedAt: now,
		})
	default:
		return fmt.Errorf("--type %q: want a user.*, organization.* or organizationMembership.* event", *eventType)
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
	fmt.Fprintf(stdout, "%s %s\n%s", resp.Status, subject, answer)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("endpoint answered %s", resp.Status)
	}
	return nil
}
