package voice_test

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/stickycalls/stickycalls/context/boltstore"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/greetings"
	"github.com/stickycalls/stickycalls/voice"
)

// Load of BenchmarkRelay: like 50 calls of 20 ms audio frames.
const (
	benchStreams  = 50
	benchInterval = 20 * time.Millisecond
	benchDuration = 3 * time.Second
)

// BenchmarkRelay streams 50 concurrent calls at 50 frames/s through the
// relay, and the same load straight to the agent, and reports the latency
// the relay adds per frame (p50, p99: relay path minus direct path, each
// frame stamped with its send time in its payload) and the relay's CPU
// per stream (process CPU of the relay run minus that of the direct run).
// Each iteration takes a few seconds; run it with -benchtime=1x.
func BenchmarkRelay(b *testing.B) {
	for range b.N {
		rb := newRelayBench(b)
		direct, directCPU := rb.run(b, false)
		relayed, relayCPU := rb.run(b, true)
		rb.close()
		streamSeconds := float64(benchStreams) * benchDuration.Seconds()
		b.ReportMetric(float64(percentile(relayed, 50)-percentile(direct, 50))/1e3, "added-p50-us")
		b.ReportMetric(float64(percentile(relayed, 99)-percentile(direct, 99))/1e3, "added-p99-us")
		b.ReportMetric(float64(percentile(direct, 50))/1e3, "direct-p50-us")
		b.ReportMetric(float64(percentile(direct, 99))/1e3, "direct-p99-us")
		b.ReportMetric(float64(len(relayed)), "frames")
		b.ReportMetric(float64(relayCPU-directCPU)/1e3/streamSeconds, "relay-cpu-ms/stream-s")
	}
}

// relayBench is the service, a fake agent that records each media frame's
// delay, and the calls' stream parameters.
type relayBench struct {
	srv, agentSrv *httptest.Server
	bolt          *boltstore.Store
	epoch         time.Time
	mu            sync.Mutex
	delays        []time.Duration
	params        []map[string]string
}

func newRelayBench(b *testing.B) *relayBench {
	rb := &relayBench{epoch: time.Now()}
	rb.agentSrv = httptest.NewServer(http.HandlerFunc(rb.agent))
	var err error
	rb.bolt, err = boltstore.Open(filepath.Join(b.TempDir(), "bench.db"), time.Second)
	if err != nil {
		b.Fatal(err)
	}
	g, _ := greetings.New(nil, nil)
	calls := callcontext.NewService(rb.bolt, callcontext.NoLookup{}, g, time.Now, nil, callcontext.Durations{})
	mux := http.NewServeMux()
	rb.srv = httptest.NewServer(mux)
	cfg := voice.Config{
		PublicURL: rb.srv.URL,
		Accounts:  []voice.Account{{Tenant: "default", AuthToken: token}},
		Numbers:   map[string]voice.Number{number: {Tenant: "default", Next: voice.Action{Stream: "ws" + strings.TrimPrefix(rb.agentSrv.URL, "http")}}},
		Greeter:   g,
		Metrics:   voice.NewMetrics(prometheus.NewRegistry()),
	}
	mux.Handle("POST /voice/incoming", voice.RequireSignature(cfg, zerolog.Nop())(voice.HandleIncoming(zerolog.Nop(), calls, cfg)))
	mux.Handle("GET /voice/stream", voice.HandleStream(zerolog.Nop(), calls, cfg, nil))
	for i := range benchStreams {
		rb.params = append(rb.params, rb.incoming(b, fmt.Sprintf("CABENCH%04d", i), fmt.Sprintf("+1415555%04d", i)))
	}
	return rb
}

func (rb *relayBench) close() {
	rb.srv.Close()
	rb.agentSrv.Close()
	rb.bolt.Close()
}

// incoming answers a call and returns its <Stream> parameters.
func (rb *relayBench) incoming(b *testing.B, callSid, from string) map[string]string {
	form := incomingForm(callSid, from, number)
	req, _ := http.NewRequest("POST", rb.srv.URL+"/voice/incoming", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", voice.Sign(token, rb.srv.URL+"/voice/incoming", form))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var n node
	if err := xml.NewDecoder(resp.Body).Decode(&n); err != nil {
		b.Fatal(err)
	}
	s, ok := n.find("Stream")
	if !ok {
		b.Fatalf("no <Stream> for %s", callSid)
	}
	params := map[string]string{}
	for _, p := range s.Nodes {
		params[p.attr("name")] = p.attr("value")
	}
	return params
}

// agent records the delay of every media frame until stop, then hangs up.
func (rb *relayBench) agent(w http.ResponseWriter, r *http.Request) {
	var up websocket.Upgrader
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	var delays []time.Duration
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			break
		}
		var f struct {
			Event string
			Media struct{ Payload string }
		}
		json.Unmarshal(msg, &f)
		if f.Event == "stop" {
			break
		}
		if raw, err := base64.StdEncoding.DecodeString(f.Media.Payload); err == nil && f.Event == "media" {
			delays = append(delays, time.Since(rb.epoch)-time.Duration(binary.BigEndian.Uint64(raw)))
		}
	}
	rb.mu.Lock()
	rb.delays = append(rb.delays, delays...)
	rb.mu.Unlock()
}

// run sends the load through the relay or straight to the agent and
// returns every frame's delay and the process CPU time it took, in µs.
func (rb *relayBench) run(b *testing.B, relayed bool) ([]time.Duration, int64) {
	rb.delays = nil
	cpu := cpuMicros()
	var wg sync.WaitGroup
	for i, p := range rb.params {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * benchInterval / benchStreams) // calls do not tick in step
			if err := rb.stream(relayed, fmt.Sprintf("CABENCH%04d", i), p); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	cpu = cpuMicros() - cpu
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return rb.delays, cpu
}

// stream plays one call as Twilio does: connected, start, a media frame
// every 20 ms, stop; then it waits for the socket to close.
func (rb *relayBench) stream(relayed bool, callSid string, params map[string]string) error {
	u, h := "ws"+strings.TrimPrefix(rb.agentSrv.URL, "http"), http.Header{}
	if relayed {
		u = "ws" + strings.TrimPrefix(rb.srv.URL, "http") + "/voice/stream"
		h.Set("X-Twilio-Signature", voice.Sign(token, "wss"+strings.TrimPrefix(rb.srv.URL, "http")+"/voice/stream", nil))
	}
	c, _, err := websocket.DefaultDialer.Dial(u, h)
	if err != nil {
		return err
	}
	defer c.Close()
	c.WriteMessage(websocket.TextMessage, []byte(connectedFrame))
	c.WriteMessage(websocket.TextMessage, []byte(startFrame(callSid, params)))
	tick := time.NewTicker(benchInterval)
	defer tick.Stop()
	audio := make([]byte, 160) // 20 ms of mu-law
	for n := 1; n <= int(benchDuration/benchInterval); n++ {
		<-tick.C
		binary.BigEndian.PutUint64(audio, uint64(time.Since(rb.epoch)))
		frame := `{"event":"media","sequenceNumber":"` + strconv.Itoa(n+1) + `","streamSid":"` + streamSID +
			`","media":{"track":"inbound","chunk":"` + strconv.Itoa(n) + `","timestamp":"` + strconv.Itoa(n*20) +
			`","payload":"` + base64.StdEncoding.EncodeToString(audio) + `"}}`
		if err := c.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			return err
		}
	}
	c.WriteMessage(websocket.TextMessage, []byte(`{"event":"stop","streamSid":"`+streamSID+`"}`))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return nil
		}
	}
}

// cpuMicros is the process's user and system CPU time so far, in µs.
func cpuMicros() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Sec*1e6 + ru.Utime.Usec + ru.Stime.Sec*1e6 + ru.Stime.Usec
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}
