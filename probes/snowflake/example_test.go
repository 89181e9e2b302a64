package snowflake_test

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dsctl/dsctl/probes/snowflake"
)

// A command layer's bulk decode: stdin to CSV on stdout, bad lines to stderr.
func ExampleDecodeStream() {
	layout, err := snowflake.Resolve("discord", "")
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	in := strings.NewReader("175928847299117063\nnope\n")
	st, err := snowflake.DecodeStream(in, os.Stdout, snowflake.NewDecoder(layout, now), snowflake.CSV,
		func(line int, text []byte, err error) { fmt.Printf("line %d: %v\n", line, err) })
	fmt.Println(st.Good, st.Failed, err)
	// Output:
	// line 2: id "nope": not a decimal or 0x-hex number
	// id,layout,timestamp,unix_ms,age,worker,process,increment,warnings
	// 175928847299117063,discord,2016-04-30T11:18:25.796Z,1462015105796,9y307d,1,0,7,js_unsafe
	// 1 1 <nil>
}

// One ID, decoded into fields for a table.
func ExampleDecoder_Decode() {
	layout, _ := snowflake.Preset("twitter")
	d := snowflake.NewDecoder(layout, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	id, _ := snowflake.ParseID("1790000000000000000")
	v := d.Decode(id)
	fmt.Println(v.Instant(), v.Age(), d.Fields(&v), v.Warnings.Codes())
	// Output:
	// 2024-05-13T12:43:51.248Z 1y291d [{datacenter 25} {worker 16} {sequence 0}] [js_unsafe]
}
