package clerkapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/clerk/clerk-sdk-go/v2"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/clerksync/clerksync/internal/clerkevent"
)

// clerkAPIVersion is the Clerk-API-Version clerk-sdk-go sends, so that a
// listed user has the shape the SDK's own calls get
// (TestListUsers_SpeaksAsTheSDK holds the two together).
const clerkAPIVersion = "2025-11-10"

// listUsers reads one page of GET /v1/users, with the SDK's HTTP client,
// URL and key. It does not go through Backend.Call because Call decodes
// with encoding/json, which scans a body once to validate it and again to
// decode it: for pages of 500 users (half a megabyte or more each) that
// was most of a backfill worker's CPU, which PostgreSQL could use. The page is
// decoded by go-json-experiment/json's v1 API: encoding/json's behaviour on
// the implementation Go 1.27 adopts as encoding/json/v2, in one pass and
// about twice as fast (BenchmarkDecodeUserPage). A refusal becomes the
// *clerk.APIErrorResponse Call would return, so retrying treats both
// alike.
func (c *Client) listUsers(ctx context.Context, params map[string]string, keepRaw bool) ([]*clerkevent.ClerkUser, error) {
	url, err := clerk.JoinPath(*c.config.URL, "/users")
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	req.URL.RawQuery = query(params).ToQuery().Encode()
	req.Header.Set("Authorization", "Bearer "+*c.config.Key)
	req.Header.Set("Clerk-API-Version", clerkAPIVersion)
	req.Header.Set("User-Agent", "clerksync")
	resp, err := c.config.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body := pageBuffers.Get().(*bytes.Buffer)
	defer pageBuffers.Put(body)
	body.Reset()
	if _, err := body.ReadFrom(resp.Body); err != nil {
		return nil, fmt.Errorf("list users: read the answer: %w", err)
	}
	if resp.StatusCode >= 400 {
		return nil, apiError(resp, body.Bytes())
	}
	var page []*clerkevent.ClerkUser
	if err := jsonv1.Unmarshal(body.Bytes(), &page); err != nil {
		return nil, fmt.Errorf("list users: decode the page: %w", err)
	}
	if keepRaw {
		// Decoded a second time, only for a layout that stores the whole
		// object: re-encoding it would lose what the SDK does not model.
		var raws []json.RawMessage
		if err := jsonv1.Unmarshal(body.Bytes(), &raws); err != nil || len(raws) != len(page) {
			return nil, fmt.Errorf("list users: decode the page's objects: %v", err)
		}
		for i, raw := range raws {
			page[i].Raw = raw
		}
	}
	return page, nil
}

// pageBuffers hold the listing pages being read: each read into a new
// buffer, grown as it arrives, cost a backfill worker more CPU. Nothing decoded from a page refers to its buffer.
var pageBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// apiError is the error clerk-sdk-go's Backend.Call returns for an answer
// of status 400 or above: Clerk's error body with its status, or, for a
// body that is not one, the body as the message.
func apiError(resp *http.Response, body []byte) error {
	apiErr := &clerk.APIErrorResponse{HTTPStatusCode: resp.StatusCode}
	apiErr.Read(clerk.NewAPIResponse(resp, body))
	if err := jsonv1.Unmarshal(body, apiErr); err != nil || apiErr.Errors == nil {
		return errors.New(string(body))
	}
	return apiErr
}
