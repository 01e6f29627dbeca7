package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stickycalls/stickycalls/httpapi"
	"github.com/stickycalls/stickycalls/httpapi/apitest"
)

// GET /openapi.json serves the embedded document as JSON, without a key,
// and the document loads as valid OpenAPI 3.0.3, its examples included.
func TestOpenAPI(t *testing.T) {
	e := newEnv(t, nil)
	want, err := httpapi.OpenAPI()
	if err != nil {
		t.Fatalf("httpapi.OpenAPI() = %v", err)
	}
	res := e.do(t, request{method: "GET", path: "/openapi.json"})
	mustOK(t, "GET /openapi.json without a key", res)
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET /openapi.json: Content-Type = %q, want application/json", ct)
	}
	if !bytes.Equal(res.body, want) {
		t.Errorf("GET /openapi.json served %.200s…, want httpapi.OpenAPI()'s %.200s…", res.body, want)
	}
	if _, err := apitest.New(t.Context(), res.body); err != nil {
		t.Errorf("the served document does not load: %v", err)
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
	}
	if err := json.Unmarshal(res.body, &doc); err != nil || doc.OpenAPI != "3.0.3" {
		t.Errorf("the served document's openapi = %q (%v), want 3.0.3", doc.OpenAPI, err)
	}
}

// The routes beside the API answer what the document says (e.do checks
// every answer against it).
func TestOperationsDocumented(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json"} {
		mustOK(t, "GET "+path, e.do(t, request{method: "GET", path: path}))
	}
}

// Every operation of the document is a route of the service: none gets the
// router's own 404 or 405.
func TestDocumentedOperationsServed(t *testing.T) {
	e := newEnv(t, nil)
	raw, err := httpapi.OpenAPI()
	if err != nil {
		t.Fatalf("httpapi.OpenAPI() = %v", err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("decode the document: %v", err)
	}
	methods := []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
	n := 0
	for path, item := range doc.Paths {
		for method := range item {
			if !slices.Contains(methods, method) {
				continue // parameters, summary…
			}
			n++
			concrete := strings.NewReplacer("{call_id}", "call-x", "{customer_ref}", "cust_x", "{key_id}", "key_x").Replace(path)
			r := request{method: strings.ToUpper(method), path: concrete, auth: bearer(e.testKey)}
			if strings.HasPrefix(path, "/admin/") || path == "/dashboard" {
				r.auth = bearer(adminToken)
			}
			if method == "post" {
				r.body = "{}"
			}
			res := e.do(t, r)
			if res.status == http.StatusMethodNotAllowed || (res.status == http.StatusNotFound && getField(res.body, "message") == "No such route") {
				t.Errorf("%s %s is documented, but the service has no such route: %s", r.method, path, res)
			}
		}
	}
	if n < 9 {
		t.Errorf("the document has %d operations, want at least 9", n)
	}
}
