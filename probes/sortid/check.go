package sortid

import (
	"bytes"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/segmentio/ksuid"

	"github.com/dsctl/dsctl/probes/snowflake"
)

// Checker diagnoses a stream of ULIDs (or KSUIDs) in the order they were minted or
// stored: duplicates, IDs lower than the one before, and monotonicity (a monotonic
// ULID generator makes each ID minted in the same millisecond as the one before it
// larger than that one: the random part counts up). Each distinct ID is kept (16 or 20
// bytes) to find duplicates.
type Checker struct {
	kind      string
	maxListed int
	seen      map[string]int // binary ID -> first line
	rep       CheckReport
	prev      []byte
	prevMs    int64
	prevLine  int
	prevText  string
	firstMs   int64
}

// CheckReport is what `id check --layout ulid|ksuid` prints.
type CheckReport struct {
	Kind       string `json:"kind"`
	Count      int64  `json:"count"`
	Distinct   int64  `json:"distinct"`
	Duplicates int64  `json:"duplicates"`
	// OutOfOrder counts IDs lower than the one on the line before.
	OutOfOrder int64 `json:"out_of_order"`
	// SameTimePairs counts adjacent IDs with the same timestamp (ms for ULID, s for KSUID).
	SameTimePairs int64 `json:"same_time_pairs"`
	// NotMonotonic counts same-timestamp pairs where the later ID is not larger.
	NotMonotonic int64 `json:"not_monotonic"`
	// Monotonic is true when every same-timestamp pair increases (and there is one).
	Monotonic bool   `json:"monotonic"`
	First     string `json:"first"`
	Last      string `json:"last"`
	SpanMs    int64  `json:"span_ms"`
	// Problems lists the first duplicates and out-of-order pairs (up to max listed).
	Problems  []Problem `json:"problems"`
	Truncated bool      `json:"truncated"`
}

// Problem is one duplicate or out-of-order pair.
type Problem struct {
	Kind     string `json:"kind"` // duplicate, out_of_order, not_monotonic
	Line     int    `json:"line"`
	ID       string `json:"id"`
	PrevLine int    `json:"prev_line"`
	PrevID   string `json:"prev_id"`
}

// NewChecker checks IDs of kind (KindULID or KindKSUID).
func NewChecker(kind string, maxListed int) *Checker {
	return &Checker{kind: kind, maxListed: maxListed, seen: map[string]int{}, rep: CheckReport{Kind: kind, Problems: []Problem{}}}
}

// Add checks the next ID (its text, as read) from line; it returns an error for text
// that is not an ID of the checker's kind.
func (c *Checker) Add(text string, line int) error {
	bin, ms, canon, err := c.parse(text)
	if err != nil {
		return err
	}
	r := &c.rep
	r.Count++
	if first, dup := c.seen[string(bin)]; dup {
		r.Duplicates++
		c.problem("duplicate", line, canon, first, canon)
	} else {
		c.seen[string(bin)] = line
		r.Distinct++
	}
	if c.prev != nil {
		cmp := bytes.Compare(bin, c.prev)
		if cmp < 0 {
			r.OutOfOrder++
			c.problem("out_of_order", line, canon, c.prevLine, c.prevText)
		}
		if ms == c.prevMs {
			r.SameTimePairs++
			if cmp <= 0 {
				r.NotMonotonic++
				if cmp == 0 {
					c.problem("not_monotonic", line, canon, c.prevLine, c.prevText)
				}
			}
		}
	}
	if r.Count == 1 {
		r.First = snowflake.Instant(ms).String()
		c.firstMs = ms
	}
	r.Last = snowflake.Instant(ms).String()
	r.SpanMs = ms - c.firstMs
	c.prev, c.prevMs, c.prevLine, c.prevText = bin, ms, line, canon
	return nil
}

func (c *Checker) problem(kind string, line int, id string, prevLine int, prevID string) {
	if len(c.rep.Problems) >= c.maxListed {
		c.rep.Truncated = true
		return
	}
	c.rep.Problems = append(c.rep.Problems, Problem{Kind: kind, Line: line, ID: id, PrevLine: prevLine, PrevID: prevID})
}

func (c *Checker) parse(text string) (bin []byte, ms int64, canon string, err error) {
	if c.kind == KindKSUID {
		id, err := ksuid.Parse(text)
		if err != nil || !isBase62(text) {
			_, err = decodeKSUID(text, time.Time{})
			return nil, 0, "", err
		}
		return id.Bytes(), id.Time().UnixMilli(), id.String(), nil
	}
	id, err := ulid.ParseStrict(text)
	if err != nil {
		_, err = decodeULID(text, time.Time{})
		return nil, 0, "", err
	}
	b := id
	return b[:], int64(id.Time()), id.String(), nil
}

// Report returns the findings so far.
func (c *Checker) Report() CheckReport {
	r := c.rep
	r.Monotonic = r.SameTimePairs > 0 && r.NotMonotonic == 0
	return r
}
