package simulate

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DefaultNumber is the Twilio number of the in-process deployment, and the
// number --number assumes a running server is configured with.
const DefaultNumber = "+18005550100"

// Flags are the options of `stickycalls simulate`.
type Flags struct {
	Params                   Params
	Out, URL, Key, AuthToken string
	Number, PublicURL        string
	Scoring                  string // in-process scoring overrides, "weights.NAME=V,thresholds.NAME=V"
}

// ParseFlags reads the command's arguments; getenv gives the defaults of
// --key, --auth-token and --public-url. Against a running server (--url)
// the history is smaller by default and starts today.
func ParseFlags(args []string, getenv func(string) string) (Flags, error) {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f Flags
	fs.Uint64Var(&f.Params.Seed, "seed", 1, "seed of the world and of every choice")
	fs.IntVar(&f.Params.People, "customers", 10000, "people who call (300 with --url)")
	fs.IntVar(&f.Params.Calls, "calls", 50000, "calls in the history (1500 with --url)")
	fs.IntVar(&f.Params.Days, "days", 180, "length of the history in days, at least 150")
	fs.Float64Var(&f.Params.VoiceShare, "voice-share", 0.3, "share of calls through the Twilio voice webhooks")
	fs.StringVar(&f.Out, "out", "", "write the markdown report here, and recognition.svg beside it")
	fs.StringVar(&f.URL, "url", "", "play against this running server, in real time")
	fs.StringVar(&f.Key, "key", getenv("STICKYCALLS_KEY"), "a prod-mode API key of the server (--url)")
	fs.StringVar(&f.AuthToken, "auth-token", getenv("TWILIO_AUTH_TOKEN"), "the server's Twilio auth token (--url; without it, REST only)")
	fs.StringVar(&f.Number, "number", DefaultNumber, "the server's configured Twilio number (--url)")
	fs.StringVar(&f.PublicURL, "public-url", getenv("STICKYCALLS_PUBLIC_URL"), "the URL webhooks are signed against (--url; default: --url)")
	fs.StringVar(&f.Scoring, "scoring", "", "scoring overrides of the in-process tenant, as in the config file: weights.dormant_days=0,thresholds.household_reuse=0")
	if err := fs.Parse(args); err != nil {
		return f, fmt.Errorf("simulate: %w", err)
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if f.URL != "" && f.Scoring != "" {
		return f, errors.New("simulate: --scoring applies in process only; a running server takes its scoring from its config file")
	}
	if f.URL != "" {
		if f.Key == "" {
			return f, errors.New("simulate: --url needs --key, a prod-mode key (stickycalls keys create --mode prod)")
		}
		// A real-time run on someone's server: a smaller history by default.
		if !set["customers"] {
			f.Params.People = 300
		}
		if !set["calls"] {
			f.Params.Calls = 1500
		}
		f.Params.Start = time.Now().UTC().Truncate(24 * time.Hour)
	}
	return f, nil
}

// Remote is the target of a run against the running server at f.URL, whose
// clock is its own.
func (f Flags) Remote() Target {
	run := uint64(time.Now().UnixNano())
	return Target{
		Client: &http.Client{Timeout: 10 * time.Second}, BaseURL: strings.TrimRight(f.URL, "/"),
		PublicURL: strings.TrimRight(f.PublicURL, "/"), APIKey: f.Key, AuthToken: f.AuthToken,
		AccountSID: "AC" + strings.Repeat("0", 32), Number: f.Number,
		CallPrefix: "call_sim_" + strconv.FormatUint(run, 36) + "_", SIDSeed: run,
	}
}

// WriteFiles writes the markdown report to out and its picture,
// recognition.svg, beside it.
func (r *Report) WriteFiles(out string) error {
	svg := filepath.Join(filepath.Dir(out), "recognition.svg")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	if err := os.WriteFile(svg, r.SVG(), 0o644); err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	if err := os.WriteFile(out, []byte(r.Markdown(filepath.Base(svg))), 0o644); err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	return nil
}
