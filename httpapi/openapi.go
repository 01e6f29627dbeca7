package httpapi

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"
)

// openapiYAML is the OpenAPI 3.0.3 document of the REST surface, written
// once, in YAML, beside the routes it describes.
//
//go:embed openapi.yaml
var openapiYAML []byte

// OpenAPI returns the OpenAPI 3.0.3 document of the REST surface as JSON:
// what GET /openapi.json serves, and what the tests validate every /v1
// answer against (package apitest). It converts the embedded YAML on each
// call; an error means the embedded file is broken.
func OpenAPI() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		return nil, fmt.Errorf("read openapi.yaml: %w", err)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("convert openapi.yaml to JSON: %w", err)
	}
	return b, nil
}

// handleOpenAPI serves the document, converted once when the routes are
// built. It needs no key: the contract is public.
func handleOpenAPI(logger zerolog.Logger) http.Handler {
	doc, err := OpenAPI()
	return handle(logger, func(w http.ResponseWriter, r *http.Request) error {
		if err != nil {
			return err // a 500, its cause in the log
		}
		writeRaw(w, http.StatusOK, doc)
		return nil
	})
}
