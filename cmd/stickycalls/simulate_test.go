package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stickycalls/stickycalls/cmd/stickycalls/simulate"
	"github.com/stickycalls/stickycalls/httpapi/apitest"
)

// A small simulation runs through run, writes its report and picture, and
// writes them byte for byte the same for the same seed.
func TestSimulateDeterministic(t *testing.T) {
	args := []string{"simulate", "--seed", "7", "--customers", "100", "--calls", "300"}
	var outs [2][]byte
	var svgs [2][]byte
	dir := t.TempDir()
	for i := range outs {
		out := filepath.Join(dir, "docs", "RECOGNITION.md")
		if err := run(t.Context(), append(args, "--out", out), func(string) string { return "" }, io.Discard, io.Discard); err != nil {
			t.Fatalf("run(%v) = %v", args, err)
		}
		var err error
		if outs[i], err = os.ReadFile(out); err != nil {
			t.Fatal(err)
		}
		if svgs[i], err = os.ReadFile(filepath.Join(dir, "docs", "recognition.svg")); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Errorf("two runs with seed 7 wrote different reports:\n%s\n---\n%s", outs[0], outs[1])
	}
	if !bytes.Equal(svgs[0], svgs[1]) {
		t.Error("two runs with seed 7 drew different pictures")
	}
	if !bytes.Contains(outs[0], []byte("](recognition.svg)")) {
		t.Error("the report does not link its picture")
	}
}

// checked wraps a transport so that every /v1 answer through it is checked
// against the OpenAPI document: the simulation reaches shared lines,
// confirm answers and completed calls that few other tests do.
func checked(t *testing.T) func(http.RoundTripper) http.RoundTripper {
	return func(next http.RoundTripper) http.RoundTripper { return checkedTransport{t, next} }
}

type checkedTransport struct {
	t    *testing.T
	next http.RoundTripper
}

func (c checkedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	if err != nil || !strings.HasPrefix(r.URL.Path, "/v1/") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	apitest.Check(c.t, r, resp, body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// Every segment gets calls, and every rate is a share.
func TestSimulateSane(t *testing.T) {
	w, err := simulate.NewWorld(simulate.Params{Seed: 3, People: 120, Calls: 400, Days: 180, VoiceShare: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := simulateInProcess(t.Context(), w, "", checked(t))
	if err != nil {
		t.Fatalf("simulateInProcess() = %v", err)
	}
	if rep.Overall.Calls != 400 {
		t.Errorf("overall calls = %d, want 400", rep.Overall.Calls)
	}
	for _, s := range simulate.Segments() {
		row, ok := rep.Row(string(s))
		if !ok || row.Calls == 0 {
			t.Errorf("segment %s: row %+v, found %v; want calls", s, row, ok)
		}
	}
	if rep.Overall.VoiceCalls == 0 || rep.Overall.Returning == 0 || rep.Overall.Asked == 0 {
		t.Errorf("overall %+v: want voice calls, returning calls and confirm questions", rep.Overall)
	}
	rows := append(append([]simulate.Row{rep.Overall}, rep.Segments...), rep.Groups...)
	for _, r := range rows {
		for name, x := range map[string]float64{
			"reuse": r.ReuseRate(), "wrong reuse": r.WrongReuseRate(), "wrong confirm": r.WrongConfirmRate(),
			"recall": r.Recall(), "automation": r.Automation(), "first matched": r.FirstMatchedRate(), "saved wrong": r.SavedWrongRate(),
		} {
			if x < 0 || x > 1 {
				t.Errorf("%s: %s rate = %v, want within [0,1]", r.Name, name, x)
			}
		}
	}
}

// The recognition targets (docs/RECOGNITION.md) hold on a short history
// played through the real service: a change of the scoring or of the
// store that lets the wrong person be greeted, or forgets returning
// callers, fails here. `stickycalls simulate` measures the full size.
func TestSimulateTargets(t *testing.T) {
	w, err := simulate.NewWorld(simulate.Params{Seed: 1, People: 2500, Calls: 12000, Days: 180, VoiceShare: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := simulateInProcess(t.Context(), w, "", checked(t))
	if err != nil {
		t.Fatalf("simulateInProcess() = %v", err)
	}
	row := func(name string) simulate.Row {
		r, ok := rep.Row(name)
		if !ok {
			t.Fatalf("no row %q", name)
		}
		return r
	}
	checks := []struct {
		what      string
		got, want float64
		atMost    bool
	}{
		{"overall wrong-person reuse", rep.Overall.WrongReuseRate(), 0.001, true},
		{"spoofed calls reused as someone else", row(string(simulate.Spoofer)).WrongReuseRate(), 0.05, true},
		{"household members reused as someone else", row(string(simulate.Household)).WrongReuseRate(), 0.01, true},
		{"returning-caller recall", rep.Overall.Recall(), 0.98, false},
		{"returning mobile callers reused as themselves", row(string(simulate.Mobile)).Automation(), 0.95, false},
	}
	for _, c := range checks {
		if (c.atMost && c.got > c.want) || (!c.atMost && c.got < c.want) {
			t.Errorf("%s = %.2f%%, want %s %.2f%%", c.what, 100*c.got, map[bool]string{true: "at most", false: "at least"}[c.atMost], 100*c.want)
		}
	}
	var b bytes.Buffer
	rep.WriteText(&b)
	t.Logf("simulation of %d calls:\n%s", rep.Overall.Calls, b.String())
}
