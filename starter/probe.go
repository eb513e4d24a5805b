package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// probe GETs url and succeeds on a 200: the health check of clerksync's
// containers, whose image has no shell, curl or wget.
func probe(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) != 1 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, "Usage: starter probe <url>\n\nExits 0 when GET <url> answers 200 within 3 s, else 1: a container health check,\nfor example starter probe http://127.0.0.1:8081/readyz for the worker.\n")
		if len(args) == 1 {
			return nil
		}
		return fmt.Errorf("probe takes exactly one URL")
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s %s", args[0], resp.Status, body)
	}
	return nil
}
