package apitest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/context/boltstore"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/keys"
	"github.com/stickycalls/stickycalls/context/ratelimit"
	"github.com/stickycalls/stickycalls/greetings"
	"github.com/stickycalls/stickycalls/httpapi"
	"github.com/stickycalls/stickycalls/httpapi/apitest"
)

// answer is one real exchange with the service.
type answer struct {
	req    *http.Request
	status int
	header http.Header
	body   []byte
}

// answers sends one request of each kind the cases below spoil the
// document for, to a real service, and returns the answers by name.
func answers(t *testing.T) map[string]answer {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), time.Second)
	if err != nil {
		t.Fatalf("boltstore.Open() = %v", err)
	}
	t.Cleanup(func() { store.Close() })
	greeter, err := greetings.New(nil, nil)
	if err != nil {
		t.Fatalf("greetings.New() = %v", err)
	}
	p := callcontext.DefaultPolicy()
	p.Plans = map[callcontext.Mode]callcontext.Plan{callcontext.Test: {RateLimitPerMinute: 100}}
	calls := callcontext.NewService(store, callcontext.NoLookup{}, greeter, time.Now, map[string]callcontext.Policy{"default": p}, callcontext.Durations{})
	ring := keys.New(store, time.Now)
	key, _, err := ring.Create(t.Context(), "default", callcontext.Test)
	if err != nil {
		t.Fatalf("CreateKey() = %v", err)
	}
	srv := httptest.NewServer(httpapi.NewHandler(zerolog.Nop(), calls, ring, prometheus.NewRegistry(), nil, ratelimit.NewMemory()))
	t.Cleanup(srv.Close)
	reqs := []struct{ name, method, path, body string }{
		{"start", "POST", "/v1/calls/start", `{"call_id":"a-1","identity_hints":{"ani":"+14155550100"}}`},
		{"end", "POST", "/v1/calls/end", `{"call_id":"a-1","customer_ref":"cust_a","variables":{"name":"Ann"}}`},
		{"customer", "GET", "/v1/customers/cust_a", ""},
		{"usage", "GET", "/v1/usage", ""},
		{"start of a call named end", "POST", "/v1/calls/start", `{"call_id":"end","identity_hints":{"ani":"+14155550101"}}`},
		{"call named end", "GET", "/v1/calls/end", ""},
		{"unknown customer", "GET", "/v1/customers/cust_nobody", ""},
		{"invalid start", "POST", "/v1/calls/start", `{"call_id":"a-2"}`},
		{"wrong method", "PUT", "/v1/usage", ""},
		{"unknown path", "GET", "/v1/nothing", ""},
	}
	got := map[string]answer{}
	for _, r := range reqs {
		req, err := http.NewRequestWithContext(t.Context(), r.method, srv.URL+r.path, strings.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, r.path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: read body: %v", r.method, r.path, err)
		}
		got[r.name] = answer{req: req, status: resp.StatusCode, header: resp.Header, body: body}
	}
	return got
}

// at walks doc down the keys and returns the object there.
func at(t *testing.T, doc map[string]any, keys ...string) map[string]any {
	t.Helper()
	m := doc
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			t.Fatalf("the document has no object at %v (stopped at %q)", keys, k)
		}
		m = next
	}
	return m
}

// dropExamples deletes every example in v, a decoded JSON document.
func dropExamples(v any) {
	switch v := v.(type) {
	case map[string]any:
		delete(v, "example")
		for _, x := range v {
			dropExamples(x)
		}
	case []any:
		for _, x := range v {
			dropExamples(x)
		}
	}
}

// The service's document describes every answer below, and a document
// spoiled in one place (a field dropped, a status or a header missing, a
// type narrowed) fails the answer it no longer describes, and only it.
func TestSpoiledDocumentFails(t *testing.T) {
	got := answers(t)
	doc, err := httpapi.OpenAPI()
	if err != nil {
		t.Fatalf("httpapi.OpenAPI() = %v", err)
	}
	good, err := apitest.New(t.Context(), doc)
	if err != nil {
		t.Fatalf("apitest.New(the service's document) = %v", err)
	}
	for name, a := range got {
		if err := good.Validate(t.Context(), a.req, a.status, a.header, a.body); err != nil {
			t.Errorf("%s: the service's own document refuses %d %s: %v", name, a.status, a.body, err)
		}
	}
	tests := []struct {
		name  string
		spoil func(t *testing.T, doc map[string]any)
		fails []string // the answers the spoiled document must refuse
	}{
		{"a field of the start result removed", func(t *testing.T, doc map[string]any) {
			s := at(t, doc, "components", "schemas", "StartResult")
			delete(at(t, s, "properties"), "greeting")
			s["required"] = slices.DeleteFunc(s["required"].([]any), func(v any) bool { return v == "greeting" })
		}, []string{"start", "start of a call named end"}},
		{"a field the end does not send required", func(t *testing.T, doc map[string]any) {
			s := at(t, doc, "components", "schemas", "EndResult")
			s["required"] = append(s["required"].([]any), "saved_at")
		}, []string{"end"}},
		{"404 missing on GET /v1/customers", func(t *testing.T, doc map[string]any) {
			delete(at(t, doc, "paths", "/v1/customers/{customer_ref}", "get", "responses"), "404")
		}, []string{"unknown customer"}},
		{"quota no longer nullable", func(t *testing.T, doc map[string]any) {
			delete(at(t, doc, "components", "schemas", "Usage", "properties", "quota"), "nullable")
		}, []string{"usage"}},
		{"a variable's value a number", func(t *testing.T, doc map[string]any) {
			at(t, doc, "components", "schemas", "StoredVariable", "properties", "value")["type"] = "integer"
		}, []string{"customer"}},
		{"GET /v1/calls/{call_id} missing", func(t *testing.T, doc map[string]any) {
			delete(at(t, doc, "paths"), "/v1/calls/{call_id}")
		}, []string{"call named end"}},
		{"details dropped from the error body", func(t *testing.T, doc map[string]any) {
			delete(at(t, doc, "components", "schemas", "Error", "properties"), "details")
		}, []string{"invalid start"}},
		{"the RateLimit-Remaining header a string of letters", func(t *testing.T, doc map[string]any) {
			at(t, doc, "components", "headers", "RateLimit-Remaining")["schema"] = map[string]any{"type": "string", "pattern": "^[a-z]+$"}
		}, []string{"start", "end", "customer", "usage", "unknown customer", "invalid start", "start of a call named end", "call named end"}},
		{"the 405 without Allow", func(t *testing.T, doc map[string]any) {
			h := at(t, doc, "components", "responses", "MethodNotAllowed", "headers")
			h["Allowed-Methods"] = h["Allow"]
			delete(h, "Allow")
		}, []string{"wrong method"}},
		{"no NotFound response for unknown paths", func(t *testing.T, doc map[string]any) {
			responses := at(t, doc, "components", "responses")
			responses["Missing"] = responses["NotFound"]
			delete(responses, "NotFound")
			for _, item := range at(t, doc, "paths") {
				for _, op := range item.(map[string]any) {
					r, ok := op.(map[string]any)
					if !ok {
						continue
					}
					if nf, ok := r["responses"].(map[string]any)["404"].(map[string]any); ok && nf["$ref"] == "#/components/responses/NotFound" {
						nf["$ref"] = "#/components/responses/Missing"
					}
				}
			}
		}, []string{"unknown path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(doc, &m); err != nil {
				t.Fatal(err)
			}
			tt.spoil(t, m)
			dropExamples(m) // they would no longer fit the spoiled schemas
			spoiled, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			v, err := apitest.New(t.Context(), spoiled)
			if err != nil {
				t.Fatalf("apitest.New(spoiled document) = %v", err)
			}
			for name, a := range got {
				err := v.Validate(t.Context(), a.req, a.status, a.header, a.body)
				if want := slices.Contains(tt.fails, name); (err != nil) != want {
					t.Errorf("%s: Validate(%d %s) = %v, want an error: %v", name, a.status, a.body, err, want)
				}
			}
		})
	}
}
