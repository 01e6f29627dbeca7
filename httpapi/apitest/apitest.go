// Package apitest checks, in tests, that the service answers what its
// OpenAPI document (httpapi.OpenAPI) says: every status, header and body.
// A field or a status added to the code and not to the document fails the
// suite. Only test files import it.
package apitest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/stickycalls/stickycalls/httpapi"
)

// Validator checks answers against one OpenAPI document. It is safe for
// concurrent use.
type Validator struct {
	doc *openapi3.T
	// byMethod routes among the paths that take a method, as the service's
	// router does: GET /v1/calls/start reads the call named start, it is
	// not POST /v1/calls/start's 405.
	byMethod map[string]routers.Router
	all      routers.Router // every path: tells a 405 from a 404
}

// New loads doc (OpenAPI 3, JSON or YAML) and validates it, its examples
// The service's non-JSON answers (an export's JSON Lines, the dashboard's
// HTML) are checked as strings: their content type and status, not their
// text.
func init() {
	text := func(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(body)
		return string(b), err
	}
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", text)
	openapi3filter.RegisterBodyDecoder("text/html", text)
}

// included.
func New(ctx context.Context, doc []byte) (*Validator, error) {
	t, err := openapi3.NewLoader().LoadFromData(doc)
	if err != nil {
		return nil, fmt.Errorf("load OpenAPI document: %w", err)
	}
	if err := t.Validate(ctx); err != nil {
		return nil, fmt.Errorf("validate OpenAPI document: %w", err)
	}
	v := &Validator{doc: t, byMethod: map[string]routers.Router{}}
	if v.all, err = gorillamux.NewRouter(t); err != nil {
		return nil, fmt.Errorf("route OpenAPI document: %w", err)
	}
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodTrace}
	for _, method := range methods {
		paths := openapi3.NewPaths()
		for path, item := range t.Paths.Map() {
			if item.GetOperation(method) != nil {
				paths.Set(path, item)
			}
		}
		if paths.Len() == 0 {
			continue
		}
		only := *t // shallow: the paths differ, the rest is shared and read-only
		only.Paths = paths
		if v.byMethod[method], err = gorillamux.NewRouter(&only); err != nil {
			return nil, fmt.Errorf("route OpenAPI document's %s operations: %w", method, err)
		}
	}
	return v, nil
}

// find routes req as the service's router does: among the paths that take
// its method first; failing that, ErrMethodNotAllowed for a path that takes
// others, else ErrPathNotFound.
func (v *Validator) find(req *http.Request) (*routers.Route, map[string]string, error) {
	if r, ok := v.byMethod[req.Method]; ok {
		route, params, err := r.FindRoute(req)
		if !errors.Is(err, routers.ErrPathNotFound) {
			return route, params, err
		}
	}
	_, _, err := v.all.FindRoute(req)
	if err == nil {
		err = routers.ErrMethodNotAllowed // a path that takes the method was found above
	}
	return nil, nil, err
}

// Validate reports how the answer (status, header, body) to req departs
// from the document, or nil. Only the answer is checked, not req: tests send
// bad requests on purpose. A path the document does not have must be the
// router's 404, and a method a documented path does not take its 405, as
// the document's NotFound and MethodNotAllowed responses describe them.
func (v *Validator) Validate(ctx context.Context, req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := v.find(req)
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		route, err = v.only(req, "NotFound", http.StatusNotFound)
	case errors.Is(err, routers.ErrMethodNotAllowed):
		route, err = v.only(req, "MethodNotAllowed", http.StatusMethodNotAllowed)
	}
	if err != nil {
		return fmt.Errorf("find route: %w", err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		// IncludeResponseStatus: a status the operation does not list fails.
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, in); err != nil {
		return err
	}
	// kin-openapi skips the body of a response documented without one.
	if doc := route.Operation.Responses.Status(status); doc != nil && doc.Value != nil && len(doc.Value.Content) == 0 && len(body) > 0 {
		return fmt.Errorf("status %d is documented without a body, got %d bytes", status, len(body))
	}
	return nil
}

// only is a route whose one documented answer is the components' response
// name with status: what a request outside the document's operations gets.
func (v *Validator) only(req *http.Request, name string, status int) (*routers.Route, error) {
	ref := v.doc.Components.Responses[name]
	if ref == nil {
		return nil, fmt.Errorf("%s %s: not in the document, and the document has no %s response", req.Method, req.URL.Path, name)
	}
	op := openapi3.NewOperation()
	op.Responses = openapi3.NewResponses(openapi3.WithStatus(status, ref))
	return &routers.Route{Spec: v.doc, Path: req.URL.Path, Method: req.Method, Operation: op}, nil
}

// service is the validator of the service's own document, loaded once per
// test binary: tests of many goroutines share it.
var service = sync.OnceValues(func() (*Validator, error) {
	doc, err := httpapi.OpenAPI()
	if err != nil {
		return nil, err
	}
	return New(context.Background(), doc)
})

// Check validates an answer a test received against the service's own
// document: resp is the answer to req, and body its body, already read. A
// departure is reported with tb.Errorf, so Check may run on any goroutine
// while the test runs.
func Check(tb testing.TB, req *http.Request, resp *http.Response, body []byte) {
	tb.Helper()
	v, err := service()
	if err != nil {
		tb.Errorf("apitest: %v", err)
		return
	}
	if err := v.Validate(context.Background(), req, resp.StatusCode, resp.Header, body); err != nil {
		tb.Errorf("%s %s answered %d %s\nwhich the OpenAPI document (httpapi/openapi.yaml) does not describe: %v",
			req.Method, req.URL.Path, resp.StatusCode, clip(body), err)
	}
}

// clip shortens a body for a failure message.
func clip(body []byte) string {
	const most = 600
	if len(body) <= most {
		return string(body)
	}
	return string(body[:most]) + "… (" + strconv.Itoa(len(body)) + " bytes)"
}
