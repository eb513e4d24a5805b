// Command devclerk is make run's local stand-in for Clerk, for trying
// clerksync without a Clerk account: the fake Clerk Backend API the tests
// use (users, JWKS), plus POST /dev/tokens, which makes a user exist and
// returns a session token for it that the starter's ensure accepts.
// `starter token <clerk_id>` calls it. Never expose it: it signs tokens for
// anyone who asks.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/clerksync/clerksync/internal/clerkevent"
	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
)

// DefaultAddr is where make run serves it; `starter token` asks there.
const DefaultAddr = "127.0.0.1:8082"

func main() {
	flag.CommandLine.SetOutput(os.Stdout)
	addr := flag.String("addr", DefaultAddr, "address to listen on (keep it on loopback)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stdout, `Usage: devclerk [--addr %s]

A local stand-in for the Clerk Backend API, for make run: give the worker and
the starter CLERK_API_URL=http://<addr>/v1 and CLERK_SECRET_KEY=%s.
POST /dev/tokens {"sub":"user_..."} returns a session token for that user
(creating the user); starter token <clerk_id> calls it.

Flags:
`, DefaultAddr, clerkfake.SecretKey)
		flag.PrintDefaults()
	}
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "devclerk:", err)
		os.Exit(1)
	}
}

// localInstanceID is the stand-in's Clerk instance ID.
const localInstanceID = "ins_clerksync_local_stand_in"

func run(ctx context.Context, addr string) error {
	fake, err := clerkfake.New()
	if err != nil {
		return err
	}
	// One instance ID across restarts, as a real Clerk instance has: a
	// backfill records it, and refuses a database filled from another.
	fake.BecomeInstance(localInstanceID)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fake.SetURL("http://" + ln.Addr().String())
	mux := http.NewServeMux()
	mux.Handle("/v1/", fake.Handler())
	mux.HandleFunc("POST /dev/tokens", func(w http.ResponseWriter, r *http.Request) { issueToken(w, r, fake) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown(context.Background())
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// tokenRequest is POST /dev/tokens's body: the user to sign in, and the
// profile Clerk has for it if it is new.
type tokenRequest struct {
	Subject   string `json:"sub"`
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
}

func issueToken(w http.ResponseWriter, r *http.Request, fake *clerkfake.Server) {
	var req tokenRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		http.Error(w, "want {\"sub\":\"user_...\"}", http.StatusBadRequest)
		return
	}
	if err := clerkevent.ValidateClerkID(req.Subject); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !fake.HasUser(req.Subject) {
		now := time.Now().Truncate(time.Millisecond)
		fake.PutUser(clerkfake.User{ID: req.Subject, Email: req.Email, FirstName: req.FirstName, LastName: req.LastName,
			CreatedAt: now, UpdatedAt: now})
	}
	token, err := fake.NewToken(clerkfake.TokenClaims{Subject: req.Subject, Expiry: time.Now().Add(time.Hour)})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"token": token})
}
