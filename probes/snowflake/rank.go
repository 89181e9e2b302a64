package snowflake

import (
	"math/bits"
	"sort"
	"time"
)

// Candidate is one layout's reading of an ID, scored for plausibility.
type Candidate struct {
	Layout    *Layout      `json:"-"`
	Name      string       `json:"layout"`
	Decoded   Decoded      `json:"-"`
	Timestamp Instant      `json:"timestamp"`
	Fields    []NamedValue `json:"fields"`
	Warnings  []string     `json:"warnings"`
	Score     float64      `json:"score"`     // 0..1, higher is more plausible
	Plausible bool         `json:"plausible"` // time within epoch..now+1 day and sign bit as the layout wants
	Reasons   []string     `json:"reasons"`   // what lowered the score
}

// Rank decodes id with each layout (the presets when layouts is nil) and returns the
// readings most plausible first. Scoring, in order of weight:
//   - implausible (score below 0.25, every plausible reading scores 0.5 or more): the
//     time lies more than a day after now or within a day of the epoch (tiny numbers
//     decode there under every layout), or bit 63 is set on a 63-bit layout (its sign
//     bit must be 0);
//   - recency (0.35): 1/(1+age in years), so a time near now beats one years ago;
//   - field sizes (0.15): real deployments use small worker numbers and low sequence
//     values, so each non-time field scores 1 - bitlen(value)/bits.
//
// Ties keep the layouts' order.
func Rank(id uint64, now time.Time, layouts []*Layout) []Candidate {
	if layouts == nil {
		layouts = presets
	}
	nowMs := now.UnixMilli()
	out := make([]Candidate, 0, len(layouts))
	for _, l := range layouts {
		d := NewDecoder(l, now)
		c := Candidate{Layout: l, Name: l.name, Decoded: d.Decode(id), Plausible: true, Reasons: []string{}}
		v := &c.Decoded
		c.Timestamp = Instant(v.UnixMs)
		c.Fields = d.Fields(v)
		c.Warnings = append([]string{}, v.Warnings.Codes()...)
		if v.Warnings.Has(WarnBeforeEpoch) || (l.total == 63 && id>>63 != 0) {
			c.Plausible = false
			c.Reasons = append(c.Reasons, "sign bit set; this layout keeps it 0")
		}
		if v.UnixMs > nowMs+24*3600*1000 {
			c.Plausible = false
			c.Reasons = append(c.Reasons, "time is more than a day in the future")
		}
		if v.Ticks >= 0 && v.UnixMs-l.epochMs < 24*3600*1000 {
			// Tiny numbers decode here under every layout: not a real reading.
			c.Plausible = false
			c.Reasons = append(c.Reasons, "time within a day of the epoch (is the number too small for this layout?)")
		}
		recency := 1.0
		if v.AgeMs > 0 {
			recency = 1 / (1 + float64(v.AgeMs)/msPerYear)
		} else if !c.Plausible {
			recency = 0
		}
		fieldScore, nf := 0.0, 0
		for i, f := range l.fields {
			if f.Role == RoleTime {
				continue
			}
			fieldScore += 1 - float64(bits.Len64(v.Values[i]))/float64(f.Bits)
			nf++
		}
		if nf > 0 {
			fieldScore /= float64(nf)
		} else {
			fieldScore = 0.5
		}
		if c.Plausible {
			c.Score = 0.5 + 0.35*recency + 0.15*fieldScore
		} else {
			c.Score = 0.1*recency + 0.1*fieldScore
		}
		if v.Warnings.Has(WarnLayoutExpired) {
			c.Reasons = append(c.Reasons, "layout's time bits have run out; only older IDs exist")
		}
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	return out
}
