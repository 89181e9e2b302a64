package snowflake

import (
	"strings"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
)

// presetDef is the source-of-truth table for the built-in layouts. Each row was checked
// against the project's own code or documentation (see note).
type presetDef struct {
	name   string
	fields []Field
	unit   time.Duration
	epoch  time.Time
	note   string
}

func tf(name string, bits int) Field { return Field{Name: name, Bits: bits, Role: RoleTime} }
func nf(name string, bits int) Field { return Field{Name: name, Bits: bits, Role: RoleNode} }
func sf(name string, bits int) Field { return Field{Name: name, Bits: bits, Role: RoleSequence} }

var presetDefs = []presetDef{
	{
		name:   "twitter",
		fields: []Field{tf("time", 41), nf("datacenter", 5), nf("worker", 5), sf("sequence", 12)},
		unit:   time.Millisecond,
		epoch:  time.UnixMilli(1288834974657),
		note:   "Twitter Snowflake (IdWorker.scala): sign bit 0, 41 bits ms since 2010-11-04T01:42:54.657Z, 5 datacenter, 5 worker, 12 sequence",
	},
	{
		name:   "discord",
		fields: []Field{tf("time", 42), nf("worker", 5), nf("process", 5), sf("increment", 12)},
		unit:   time.Millisecond,
		epoch:  time.UnixMilli(1420070400000),
		note:   "Discord API reference: 42 bits ms since 2015-01-01, 5 internal worker, 5 internal process, 12 increment (counts per process, not per ms)",
	},
	{
		name:   "instagram",
		fields: []Field{tf("time", 41), nf("shard", 13), sf("sequence", 10)},
		unit:   time.Millisecond,
		epoch:  time.UnixMilli(1314220021721),
		note:   "Instagram 'Sharding & IDs' (2011) PL/pgSQL next_id: 41 bits ms since our_epoch 1314220021721, 13 shard, 10 sequence (nextval % 1024); the epoch is per deployment, set it with --epoch; bit 63 is time, so a signed bigint turns negative in 2046",
	},
	{
		name:   "sonyflake",
		fields: []Field{tf("time", 39), sf("sequence", 8), nf("machine", 16)},
		unit:   10 * time.Millisecond,
		epoch:  time.Date(2014, 9, 1, 0, 0, 0, 0, time.UTC),
		note:   "sony/sonyflake v1: sign bit 0, 39 bits of 10 ms since 2014-09-01T00:00:00Z, 8 sequence, 16 machine (the sequence sits above the machine id)",
	},
	{
		name:   "sonyflake-v2",
		fields: []Field{tf("time", 39), sf("sequence", 8), nf("machine", 16)},
		unit:   10 * time.Millisecond,
		epoch:  time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		note:   "sony/sonyflake/v2 defaults: as sonyflake v1 but StartTime 2025-01-01T00:00:00Z (v2 can change bits and unit per deployment)",
	},
	{
		name:   "baidu",
		fields: []Field{tf("time", 28), nf("worker", 22), sf("sequence", 13)},
		unit:   time.Second,
		epoch:  time.UnixMilli(1463673600000),
		note:   "baidu/uid-generator DefaultUidGenerator: sign bit 0, 28 bits of seconds since epochStr 2016-05-20 in China time (1463673600000 = 2016-05-19T16:00:00Z), 22 worker, 13 sequence; the time bits ran out on 2024-11-20T13:24:16Z",
	},
	{
		name:   "leaf",
		fields: []Field{tf("time", 41), nf("worker", 10), sf("sequence", 12)},
		unit:   time.Millisecond,
		epoch:  time.UnixMilli(1288834974657),
		note:   "Meituan Leaf SnowflakeIDGenImpl: Twitter epoch, sign bit 0, 41 bits ms, 10 worker, 12 sequence (each ms starts the sequence at a random 0..99)",
	},
	{
		name:   "bwmarrin",
		fields: []Field{tf("time", 41), nf("node", 10), sf("step", 12)},
		unit:   time.Millisecond,
		epoch:  time.UnixMilli(1288834974657),
		note:   "github.com/bwmarrin/snowflake defaults: Twitter epoch, sign bit 0, 41 bits ms, 10 node, 12 step",
	},
	{
		name:   "mastodon",
		fields: []Field{tf("time", 48), sf("sequence", 16)},
		unit:   time.Millisecond,
		epoch:  time.UnixMilli(0),
		note:   "Mastodon lib/mastodon/snowflake.rb timestamp_id: 48 bits ms since the Unix epoch, 16 bits of MD5-salted base plus a table sequence (not a counter from 0)",
	},
	{
		name:   "influxdb",
		fields: []Field{tf("time", 42), nf("machine", 10), sf("sequence", 12)},
		unit:   time.Millisecond,
		epoch:  time.UnixMilli(1491696000000),
		note:   "influxdata/influxdb pkg/snowflake: 42 bits ms since 2017-04-09T00:00:00Z, 10 machine, 12 sequence",
	},
}

// presets is built once from presetDefs and never changes.
var presets = func() []*Layout {
	out := make([]*Layout, 0, len(presetDefs))
	for _, d := range presetDefs {
		l, err := NewLayout(d.name, d.fields, d.unit, d.epoch)
		if err != nil {
			panic("snowflake: bad preset " + d.name + ": " + err.Error())
		}
		l.note = d.note
		out = append(out, l)
	}
	return out
}()

// Presets returns the built-in layouts in a fixed order.
func Presets() []*Layout {
	out := make([]*Layout, len(presets))
	copy(out, presets)
	return out
}

// PresetNames lists the built-in layout names in the same order as Presets.
func PresetNames() []string {
	out := make([]string, len(presets))
	for i, l := range presets {
		out[i] = l.name
	}
	return out
}

// Preset returns the built-in layout with that name (case-insensitive).
func Preset(name string) (*Layout, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	for _, l := range presets {
		if l.name == n {
			return l, nil
		}
	}
	return nil, errs.Usage("layout %s: unknown", quote(name)).
		WithHint("known: %s, auto, or a spec like time:41:1ms,worker:10,sequence:12", strings.Join(PresetNames(), ", "))
}
