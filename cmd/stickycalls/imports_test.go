package main

import (
	"go/build"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/stickycalls/stickycalls/"

// allowedImports is DESIGN's table of which project packages each package
// may import (test files aside). Dependencies point toward the domain.
var allowedImports = map[string][]string{
	"config":                   {},
	"context/identity":         {},
	"context/callcontext":      {"context/identity"},
	"context/boltstore":        {"context/callcontext", "context/identity"},
	"context/redisstore":       {"context/callcontext", "context/identity"},
	"context/storetest":        {"context/callcontext", "context/identity"},
	"context/redistest":        {},
	"lookup":                   {"context/identity"},
	"greetings":                {"context/callcontext", "context/identity"},
	"voice":                    {"context/callcontext", "context/identity", "greetings"},
	"httpapi":                  {"context/callcontext", "context/identity", "voice"},
	"cmd/stickycalls/simulate": {"voice"}, // signs webhooks as Twilio does; otherwise only HTTP
}

func TestImports(t *testing.T) {
	for pkg, allowed := range allowedImports {
		p, err := build.ImportDir(filepath.Join("..", "..", pkg), 0)
		if err != nil {
			continue // a package of the table that does not exist yet
		}
		for _, imp := range p.Imports {
			dep, ok := strings.CutPrefix(imp, module)
			if !ok {
				continue
			}
			if !contains(allowed, dep) {
				t.Errorf("%s must not import %s", pkg, dep)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
