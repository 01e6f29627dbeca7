// Package backup moves a scope's recognition state (customers with their
// links, times, answers and disputes, intents with history, variables with
// their expiry, and the line types its numbers are remembered with) out of
// a store and into another as JSON Lines: a backup format, and the way a
// deployment that outgrows the embedded store moves to Redis without losing
// anyone. Index entries are not written out: an import rebuilds them from
// the customers, as the store's Seed does. Call records are not either:
// they live for days, and an import starts with none.
package backup

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/stickycalls/stickycalls/context/callapi"
	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/identity"
	"github.com/stickycalls/stickycalls/context/storage"
)

// Version is the format's version, in every file's first line.
const Version = 1

// Header is a file's first line.
type Header struct {
	Version int              `json:"version"`
	Tenant  string           `json:"tenant"`
	Mode    callcontext.Mode `json:"mode"`
	At      time.Time        `json:"at"`
}

// Line is one line of a file: exactly one field is set.
type Line struct {
	Export   *Header                     `json:"stickycalls_export,omitempty"`
	Customer *storage.Record             `json:"customer,omitempty"`
	LineType *storage.RememberedLineType `json:"line_type,omitempty"`
}

// Source is a store a scope can be exported from.
type Source interface {
	Export(ctx context.Context, sc callcontext.Scope, now time.Time, customer func(storage.Record) error, lineType func(storage.RememberedLineType) error) error
}

// Sink is a store a scope can be imported into.
type Sink interface {
	Customers(ctx context.Context, sc callcontext.Scope, refs []string) (map[string]storage.Record, error)
	Seed(ctx context.Context, sc callcontext.Scope, recs []storage.Record, now time.Time) error
	RememberLineTypes(ctx context.Context, sc callcontext.Scope, lts []storage.RememberedLineType) error
}

// ErrConflict means customers of the file are stored otherwise already.
var ErrConflict = errors.New("import refused")

// Counts says what an export wrote or an import did.
type Counts struct {
	Customers int `json:"customers"`
	LineTypes int `json:"line_types"`
	// Import only: customers already stored as they are in the file, and
	// customers or line types that expired before the import.
	Unchanged int `json:"unchanged"`
	Expired   int `json:"expired"`
}

// Export writes sc's state as of now from src to w.
func Export(ctx context.Context, src Source, sc callcontext.Scope, now time.Time, w io.Writer) (Counts, error) {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	var c Counts
	if err := enc.Encode(Line{Export: &Header{Version: Version, Tenant: sc.Tenant, Mode: sc.Mode, At: now.UTC()}}); err != nil {
		return c, err
	}
	err := src.Export(ctx, sc, now,
		func(r storage.Record) error { c.Customers++; return enc.Encode(Line{Customer: &r}) },
		func(lt storage.RememberedLineType) error { c.LineTypes++; return enc.Encode(Line{LineType: &lt}) })
	if err != nil {
		return c, fmt.Errorf("export: %w", err)
	}
	return c, bw.Flush()
}

// maxLine bounds one line: a customer at its limits is well under it.
const maxLine = 4 << 20

// LineError is a problem of one line of a file.
type LineError struct {
	Line    int    `json:"line"`
	Message string `json:"message"`
}

// BadFile is every problem of a file; nothing of it was written.
type BadFile struct{ Lines []LineError }

func (e *BadFile) Error() string {
	parts := make([]string, len(e.Lines))
	for i, l := range e.Lines {
		parts[i] = fmt.Sprintf("line %d: %s", l.Line, l.Message)
	}
	return "import refused, nothing written: " + strings.Join(parts, "; ")
}

// File is a file read and checked.
type File struct {
	Header    Header
	Customers []storage.Record
	LineTypes []storage.RememberedLineType
}

// Read reads and checks a whole file: its header, then customers and line
// types. Every bad line is reported, with its number, in a *BadFile.
func Read(r io.Reader) (File, error) {
	var f File
	bad := &BadFile{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	n := 0
	refs := map[string]int{}
	for sc.Scan() {
		n++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		problem := f.add(n, raw, refs)
		if problem != "" {
			bad.Lines = append(bad.Lines, LineError{n, problem})
		}
	}
	if err := sc.Err(); err != nil {
		bad.Lines = append(bad.Lines, LineError{n + 1, "cannot be read: " + err.Error()})
	}
	if n == 0 || f.Header.Version == 0 {
		bad.Lines = append(bad.Lines, LineError{1, `the first line must be the export's header, {"stickycalls_export":{…}}`})
	}
	if len(bad.Lines) > 0 {
		slices.SortStableFunc(bad.Lines, func(a, b LineError) int { return a.Line - b.Line })
		return File{}, bad
	}
	return f, nil
}

// add checks one line and keeps what it holds; it returns the problem, or "".
func (f *File) add(n int, raw []byte, refs map[string]int) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var l Line
	if err := dec.Decode(&l); err != nil {
		return "not a line of an export: " + err.Error()
	}
	set := 0
	for _, ok := range []bool{l.Export != nil, l.Customer != nil, l.LineType != nil} {
		if ok {
			set++
		}
	}
	switch {
	case set != 1:
		return "must hold exactly one of stickycalls_export, customer, line_type"
	case l.Export != nil:
		switch {
		case n != 1 && f.Header.Version != 0:
			return "a second header"
		case l.Export.Version != Version:
			return fmt.Sprintf("version %d; this service reads version %d", l.Export.Version, Version)
		}
		f.Header = *l.Export
	case l.Customer != nil:
		r := *l.Customer
		if p := checkCustomer(r); p != "" {
			return p
		}
		if first, ok := refs[r.Ref]; ok {
			return fmt.Sprintf("customer %q is on line %d already", r.Ref, first)
		}
		refs[r.Ref] = n
		f.Customers = append(f.Customers, r)
	case l.LineType != nil:
		lt := *l.LineType
		if _, withheld, ok := callapi.NormalizeANI(lt.ANI); !ok || withheld || !strings.HasPrefix(lt.ANI, "+") {
			return "line_type.ani must be an E.164 number"
		}
		if t, ok := identity.ParseLineType(string(lt.LineType)); !ok || t == identity.Unknown {
			return "line_type.line_type must be mobile, landline or voip"
		}
		f.LineTypes = append(f.LineTypes, lt)
	}
	return ""
}

// checkCustomer checks what a store needs of a customer.
func checkCustomer(r storage.Record) string {
	switch {
	case r.Ref == "" || len(r.Ref) > 128:
		return "customer.ref must be 1 to 128 characters"
	case r.Version < 1:
		return "customer.version must be 1 or more"
	case r.Expires.IsZero():
		return "customer.expires is missing"
	}
	for ani := range r.ANIs {
		if _, withheld, ok := callapi.NormalizeANI(ani); !ok || withheld || !strings.HasPrefix(ani, "+") {
			return fmt.Sprintf("customer.anis: %q is not an E.164 number", ani)
		}
	}
	// What §4 lets an end save, an import may not exceed: a file edited by
	// hand must not bring in what the API refuses.
	if n := len(r.Variables); n > callapi.MaxVariables {
		return fmt.Sprintf("customer.variables: at most %d; this customer has %d", callapi.MaxVariables, n)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Variables)) {
		if p := callapi.VariableProblem(k, r.Variables[k].Value); p != "" {
			return fmt.Sprintf("customer.variables.%s: %s", k, p)
		}
	}
	if n := len(r.Intents); n > callapi.MaxOpenIntents {
		return fmt.Sprintf("customer.intents: at most %d open; this customer has %d", callapi.MaxOpenIntents, n)
	}
	return ""
}

// Scope is the scope a file goes into: want's tenant and mode where set,
// else the file's own. A set one that is not the file's is refused, so a
// test export is not imported as prod by mistake.
func (f File) Scope(want callcontext.Scope) (callcontext.Scope, error) {
	sc := callcontext.Scope{Tenant: cmpOr(want.Tenant, f.Header.Tenant), Mode: callcontext.Mode(cmpOr(string(want.Mode), string(f.Header.Mode)))}
	if sc != (callcontext.Scope{Tenant: f.Header.Tenant, Mode: f.Header.Mode}) {
		return sc, fmt.Errorf("%w: the file is tenant %q mode %q, not %q %q", ErrOtherScope, f.Header.Tenant, f.Header.Mode, sc.Tenant, sc.Mode)
	}
	return sc, nil
}

// ErrOtherScope means a file is asked to go into another scope than its own.
var ErrOtherScope = errors.New("import refused, nothing written")

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Import writes f into sc of dst as of now. It is idempotent: a customer
// already stored exactly as in the file is left alone; one stored
// otherwise is a conflict, and then nothing is written. Customers and line
// types that expired before now are skipped.
func Import(ctx context.Context, dst Sink, sc callcontext.Scope, f File, now time.Time) (Counts, error) {
	var c Counts
	var fresh []storage.Record
	byRef := map[string]storage.Record{}
	for _, r := range f.Customers {
		if !r.Expires.After(now) {
			c.Expired++
			continue
		}
		byRef[r.Ref] = r
	}
	refs := slices.Sorted(maps.Keys(byRef))
	var conflicts []string
	for len(refs) > 0 {
		batch := refs[:min(len(refs), 1000)]
		refs = refs[len(batch):]
		stored, err := dst.Customers(ctx, sc, batch)
		if err != nil {
			return Counts{}, fmt.Errorf("import: read customers: %w", err)
		}
		for _, ref := range batch {
			have, ok := stored[ref]
			switch {
			case !ok:
				fresh = append(fresh, byRef[ref])
			case same(have, byRef[ref]):
				c.Unchanged++
			default:
				conflicts = append(conflicts, ref)
			}
		}
	}
	if len(conflicts) > 0 {
		return Counts{}, fmt.Errorf("%w, nothing written: %d customers are stored otherwise than in the file (%s)",
			ErrConflict, len(conflicts), strings.Join(conflicts[:min(len(conflicts), 10)], ", "))
	}
	var lts []storage.RememberedLineType
	for _, lt := range f.LineTypes {
		if lt.Expires.After(now) {
			lts = append(lts, lt)
		} else {
			c.Expired++
		}
	}
	if err := dst.Seed(ctx, sc, fresh, now); err != nil {
		return Counts{}, fmt.Errorf("import: %w", err)
	}
	if err := dst.RememberLineTypes(ctx, sc, lts); err != nil {
		return Counts{}, fmt.Errorf("import: %w", err)
	}
	c.Customers, c.LineTypes = len(fresh), len(lts)
	return c, nil
}

// same reports whether two records hold the same, as JSON.
func same(a, b storage.Record) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return errors.Join(err1, err2) == nil && bytes.Equal(ja, jb)
}
