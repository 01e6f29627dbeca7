package main

import (
	"go/build"
	"io/fs"
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
	"context/callapi":          {"context/identity"},
	"context/storage":          {"context/identity"}, // what the stores keep: records, claims, commits
	"context/tally":            {"context/identity", "context/storage"},
	"context/callcontext":      {"context/callapi", "context/identity", "context/storage", "context/tally"},
	"context/boltstore":        {"context/storecodec", "context/keys", "context/callcontext", "context/identity", "context/storage"},
	"context/redisstore":       {"context/storecodec", "context/keys", "context/callcontext", "context/identity", "context/ratelimit", "context/storage"},
	"context/ratelimit":        {"context/callcontext"},
	"context/keys":             {"context/callcontext"},
	"context/storecodec":       {},
	"context/storetest":        {"lookup", "context/callapi", "context/keys", "context/callcontext", "context/identity", "context/backup", "context/storage", "context/tally"},
	"context/backup":           {"context/callapi", "context/callcontext", "context/identity", "context/storage"},
	"context/redistest":        {"context/childproc"},
	"context/childproc":        {}, // starts children that die with the process (redistest, the bench)
	"context/outbox":           {"context/callapi", "context/callcontext"},
	"context/apierror":         {"context/callapi", "context/keys", "context/callcontext", "context/storage"},
	"context/storemetrics":     {"lookup", "context/keys", "context/callcontext", "context/identity", "context/storage"},
	"lookup":                   {"context/identity"},
	"greetings":                {"context/callapi", "context/callcontext", "context/identity"},
	"voice":                    {"context/callapi", "context/apierror", "context/callcontext", "context/identity", "greetings", "voice/agentctx"},
	"voice/agentctx":           {"context/callapi", "context/callcontext", "context/identity", "greetings"},
	"voice/vapi":               {"context/callapi", "context/apierror", "context/callcontext", "context/identity", "greetings", "voice/agentctx"},
	"voice/retell":             {"context/callapi", "context/apierror", "context/callcontext", "context/identity", "greetings", "voice/agentctx"},
	"httpapi":                  {"context/callapi", "context/keys", "context/apierror", "context/callcontext", "context/identity", "context/backup", "context/ratelimit", "context/tally", "voice"},
	"httpapi/apitest":          {"httpapi"}, // tests only: checks answers against httpapi.OpenAPI
	"cmd/stickycalls/simulate": {"voice"},   // signs webhooks as Twilio does; otherwise only HTTP
	// The service as serve wires it: like the program, it may import every
	// package above but the test helpers.
	"cmd/stickycalls/internal/service": {"context/callapi", "context/keys", "config", "context/backup", "context/boltstore", "context/callcontext", "context/identity", "context/ratelimit",
		"context/outbox", "context/redisstore", "context/storemetrics", "greetings", "httpapi", "lookup", "voice", "voice/agentctx",
		"voice/retell", "voice/vapi"},
	"cmd/stickycalls/internal/admin": {"context/keys", "context/backup", "context/callcontext"}, // the client of a server's admin routes
	// The bench seeds both stores itself, signs webhooks, and runs the
	// service as serve does, in process or as its child.
	"cmd/stickycalls/internal/bench": {"context/callapi", "context/keys", "cmd/stickycalls/internal/service", "config", "context/boltstore", "context/callcontext",
		"context/identity", "context/redisstore", "context/childproc", "context/storage", "voice"},
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

// TestImportsTableComplete: every package of the project (but main) is in
// the table, so a new one gets its edges decided.
func TestImportsTableComplete(t *testing.T) {
	eachPackage(func(rel string, p *build.Package) {
		if p.Name == "main" || rel == "." {
			return // the program
		}
		if _, ok := allowedImports[rel]; !ok {
			t.Errorf("package %s is not in allowedImports: decide what it may import", rel)
		}
	})
}

// testOnly are the packages only test files may import: test helpers, and
// what they bring along (kin-openapi, redis-server processes).
var testOnly = []string{"context/storetest", "context/redistest", "httpapi/apitest"}

// TestTestOnlyPackages: no package, the program included, imports a test
// helper outside its test files.
func TestTestOnlyPackages(t *testing.T) {
	eachPackage(func(rel string, p *build.Package) {
		for _, imp := range p.Imports {
			if dep, ok := strings.CutPrefix(imp, module); ok && contains(testOnly, dep) {
				t.Errorf("%s must not import %s outside its test files", rel, dep)
			}
		}
	})
}

// eachPackage calls f with every package of the project, the program
// included, and its path from the module's root (slash-separated).
func eachPackage(f func(rel string, p *build.Package)) {
	root := filepath.Join("..", "..")
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		p, err := build.ImportDir(path, 0)
		if err != nil {
			return nil // no Go files
		}
		rel, _ := filepath.Rel(root, path)
		f(filepath.ToSlash(rel), p)
		return nil
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
