package simulate

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Report is what a simulation measured. Rows are exported so that tests
// can assert targets: r.Overall.WrongReuseRate(), r.Row("mobile").Automation().
type Report struct {
	Params       Params
	Segments     []Row // one per segment, in Segments order
	Groups       []Row // calls grouped otherwise: RowCRM, RowNoRef
	Overall      Row
	Gaps         Gaps
	Right, Wrong [bins]int // identity.confidence of matched starts (reuse or confirm), by 0.05 bin
	WrongReused  [bins]int // the part of Wrong whose start said reuse
	Command      string    // the command line that made it, for the markdown
}

// Row returns the row named name: a segment, a group or RowOverall.
func (r *Report) Row(name string) (Row, bool) {
	if name == RowOverall {
		return r.Overall, true
	}
	for _, row := range append(append([]Row(nil), r.Segments...), r.Groups...) {
		if row.Name == name {
			return row, true
		}
	}
	return Row{}, false
}

// rows is every row in table order.
func (r *Report) rows() []Row {
	return append(append(append([]Row(nil), r.Segments...), r.Groups...), r.Overall)
}

// columns are the table's headings.
func columns() []string {
	return []string{"segment", "people", "calls", "voice", "reuse", "wrong reuse", "wrong confirm", "returning",
		"recall", "recall (top guess)", "automation", "first calls", "first matched", "asked yes/no", "saved to other"}
}

// cells is a row as table cells.
func cells(r Row) []string {
	people := "-"
	if r.People > 0 {
		people = fmt.Sprint(r.People)
	}
	return []string{r.Name, people, fmt.Sprint(r.Calls), fmt.Sprint(r.VoiceCalls), pct(r.ReuseRate(), r.Calls),
		pct(r.WrongReuseRate(), r.Calls), pct(r.WrongConfirmRate(), r.Calls), fmt.Sprint(r.Returning),
		pct(r.Recall(), r.Returning), pct(r.RecallTop(), r.Returning), pct(r.Automation(), r.Returning), fmt.Sprint(r.FirstCalls),
		pct(r.FirstMatchedRate(), r.FirstCalls), fmt.Sprintf("%d/%d", r.Yes, r.No), pct(r.SavedWrongRate(), r.Calls)}
}

func pct(x float64, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*x)
}

// WriteText writes the table as aligned text.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(columns(), "\t")+"\t")
	for _, row := range r.rows() {
		fmt.Fprintln(tw, strings.Join(cells(row), "\t")+"\t")
	}
	return tw.Flush()
}

// Markdown is the report as a document: what was simulated and why, the
// table, the definitions, and the picture named svg.
func (r *Report) Markdown(svg string) string {
	var b strings.Builder
	p := r.Params
	fmt.Fprintf(&b, "# Recognition\n\nWritten by `%s`. Rerun it to refresh this file; the same seed gives the same file.\n\n", r.Command)
	fmt.Fprintf(&b, "%d people and %d calls over %d days from %s, seed %d, %.0f %% of calls through the Twilio voice webhooks, "+
		"played one at a time through the real HTTP handler on an embedded store, with the service's clock set to each call's time.\n\n",
		p.People, r.Overall.Calls, p.Days, p.Start.Format("2006-01-02"), p.Seed, 100*p.VoiceShare)
	b.WriteString(worldText)
	g := r.Gaps
	fmt.Fprintf(&b, "Gaps between a person's consecutive calls (%d gaps): p10 %.1f d, p25 %.1f d, median %.1f d, p75 %.1f d, p90 %.1f d; "+
		"%s under a day, %s 1–7 days, %s 7–30 days, %s 30–90 days, %s 90 days or more.\n\n",
		g.N, g.P10, g.P25, g.P50, g.P75, g.P90, pct(ratio(g.Day, g.N), g.N), pct(ratio(g.Week, g.N), g.N),
		pct(ratio(g.Month, g.N), g.N), pct(ratio(g.Quarter, g.N), g.N), pct(ratio(g.Longer, g.N), g.N))
	b.WriteString("## Results\n\n| " + strings.Join(columns(), " | ") + " |\n|" + strings.Repeat("---|", len(columns())) + "\n")
	for _, row := range r.rows() {
		b.WriteString("| " + strings.Join(cells(row), " | ") + " |\n")
	}
	b.WriteString(definitionsText)
	fmt.Fprintf(&b, "\n![Confidence of matched starts, right vs wrong person](%s)\n", svg)
	return b.String()
}

// worldText documents the world's parameters and why they are realistic.
const worldText = `## The world

* **Segments** (share of people): mobile (the rest, about 57 % with the first owners of recycled numbers; every carrier attests a mobile call, A about 90 %,
  B about 10 %), landline 10 % (60 % of landline carriers sign, A 70 % / B 30 %; the others never: none),
  VoIP 6 % (B 40 %, C 40 %, none 20 %: VoIP providers rarely know their callers), households 10 % of people
  (one landline shared by 2–4 members; the first calls early, the others' first calls are spread over the
  history), recycled numbers 2.5 % + 2.5 % (a mobile customer stops calling 27–54 days in, and the carrier gives
  the number to a new person 90–120 days later, or 45–89 days later: the US minimum aging of a disconnected
  number is 45 days, and a link lives 90 days; the first owners are counted as mobile), ported 5 % (the same
  person and number, the line type changes halfway through: landline → mobile or mobile → VoIP, with the new
  carrier's attestation; Lookup answers the new type, its 30-day cache the old one for a while), withheld 4 %
  (anonymous, restricted and Twilio's placeholder numbers; all have a CRM id, sent on half their REST calls),
  spoofers 3 % (1–3 calls within days from a real mobile customer's number, 30 % before that customer ever
  called; attestation C 40 %, none 40 %, failed 20 %; never a CRM id).
* **CRM ids**: 30 % of the other people have one; it is sent as ` + "`external_ids.crm_id`" + ` on half their REST starts.
* **Calling habits**: 35 % call once, 50 % are regular callers and 15 % frequent callers (4× the weight), with a
  log-normal spread; the calls beyond each person's minimum are shared by weight. Calls come in episodes (an
  issue, then 1–4 calls a few days apart, exponential with a 1.5-day mean) separated by longer gaps, between
  08:00 and 20:00. Each episode has an intent, open until its last call (resolved 80 % of the time).
* **Channels**: REST calls send ` + "`telco.line_type`" + ` 60 % of the time (else Twilio Lookup answers from the world's
  truth) and always an attestation. Voice calls post ` + "`/voice/incoming`" + ` (StirVerstat as attested), read the start
  with ` + "`GET /v1/calls/{CallSid}`" + `, answer the confirm question honestly (yes by digit 1 or "Yes, this is
  <name>." when the customer asked about is the caller; else "No." or digit 2), complete with ` + "`/voice/status`" + `,
  and 60 % also get an agent's end.
* **Agents** know who they talked to: they keep the call's customer when it is the caller's; else they find the
  caller's own customer 70 % of the time (always when a CRM id came with the call); else they keep the fresh
  ref of an unrecognized call, or make up a ref when the service named someone else. 10 % of ends carry no
  customer_ref whatever the agent knows (the service then saves to the start's customer). Ends save the name,
  the intent and the CRM id when the agent knows it.

`

// definitionsText defines the columns.
const definitionsText = `
* **reuse**, **wrong reuse**, **wrong confirm**: shares of the row's calls whose start (before any confirm
  answer) said reuse for anyone, and reuse or confirm for a customer the caller does not own. A customer ref
  belongs to the first person saved to it; a person may own several.
* **returning**: calls of a person who owns a customer, carrying a hint linked to one of their customers by a
  call saved in the last 90 days (the link lifetime): the number they call from (not withheld), or their CRM id
  on a REST start (unless a later call moved it to someone else). **recall**: returning calls with reuse or
  confirm for the caller, or with confirm on a shared line whose ` + "`identity.candidates`" + ` name the caller (the
  response names every member, and the guide's confirm asks the caller's name, so the agent picks the member);
  **recall (top guess)**: only the calls whose ` + "`customer_ref`" + ` is the caller's, as the voice confirm question
  (which names one customer) sees them; **automation**: with reuse for the caller.
* **first calls**: calls of people never saved before; **first matched**: those that got reuse or confirm, all
  of them for someone else.
* **asked yes/no**: honest answers to the voice confirm question. **saved to other**: calls that ended up saved
  to another person's customer (a sloppy end, or a completion after a wrong reuse).
* Rows ` + "`" + RowCRM + "`" + ` and ` + "`" + RowNoRef + "`" + ` group calls across segments: REST calls that carried a CRM id, and calls whose end had no customer_ref.
* The targets of the scoring work: overall wrong reuse ≤ 0.1 %, spoofed calls reused as someone else (the
  spoofer row's wrong reuse: a spoofer's later calls may rightly reuse the customer an agent made for the
  spoofer) ≤ 5 %, household wrong reuse ≤ 1 %, overall recall ≥ 98 %, mobile automation ≥ 95 %.
`
