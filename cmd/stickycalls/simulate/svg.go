package simulate

import (
	"fmt"
	"strings"
)

// SVG draws two histograms of identity.confidence for matched starts
// (reuse or confirm): calls of the right person above, of a wrong person
// below (the ones that said reuse darker, stacked at the bottom: a history
// rule keeps most wrong matches above 0.50 at confirm), each scaled to its
// own largest bin, with the default confirm (0.30) and reuse (0.50)
// thresholds marked. The text holds only numbers and fixed words, so it is
// written directly.
func (r *Report) SVG() []byte {
	const w, left, panel, gap = 640, 50, 160, 60
	const top2 = 40 + panel + gap
	const h = top2 + 20 + panel + 24 // the lower panel, its axis and labels
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="13">identity.confidence of starts that said reuse or confirm (seed %d)</text>`+"\n", left, r.Params.Seed)
	histogram(&b, "right person", r.Right, [bins]int{}, 40, left, w-left-20, panel, "#2b7bb9", "")
	histogram(&b, "wrong person (darker: said reuse)", r.Wrong, r.WrongReused, top2, left, w-left-20, panel, "#f0a8a6", "#b52b27")
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// histogram draws one panel at (x, top), width pw and height ph: counts in
// color, and the part of each bin in part in partColor from the bottom.
func histogram(b *strings.Builder, title string, counts, part [bins]int, top, x, pw, ph int, color, partColor string) {
	total, peak := 0, 1
	for _, n := range counts {
		total += n
		peak = max(peak, n)
	}
	fmt.Fprintf(b, `<text x="%d" y="%d">%s: %d calls (bar height relative to the largest bin, %d)</text>`+"\n", x, top+12, title, total, peak)
	base, bw := top+20+ph, pw/bins
	for i, n := range counts {
		bh := n * ph / peak
		if n > 0 {
			bh = max(bh, 1)
		}
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", x+i*bw+1, base-bh, bw-2, bh, color)
		if p := part[i]; p > 0 {
			h := max(p*ph/peak, 1)
			fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", x+i*bw+1, base-h, bw-2, h, partColor)
		}
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", x, base, x+bins*bw, base)
	for _, t := range []struct {
		at   int // hundredths
		name string
	}{{30, "confirm 0.30"}, {50, "reuse 0.50"}} {
		tx := x + t.at*bins*bw/100
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black" stroke-dasharray="4 3"/>`+"\n", tx, top+16, tx, base)
		fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`+"\n", tx+3, top+28, t.name)
	}
	for i := 0; i <= bins; i += 2 {
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">%.1f</text>`+"\n", x+i*bw, base+14, float64(i)/bins)
	}
}
