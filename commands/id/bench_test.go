package id

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/commands/cmdutil"
)

// benchInput is n Discord IDs, one per line, as `id decode --layout discord < ids.txt`
// reads them, or n UUIDs (v7 and v1 alternating) when uuids is set.
func benchInput(n int, uuids bool) string {
	var b strings.Builder
	for i := range n {
		if uuids {
			if i%2 == 0 {
				fmt.Fprintf(&b, "017f22e2-79b0-7cc3-98c4-%012x\n", i)
			} else {
				fmt.Fprintf(&b, "c232ab00-9414-11ec-b3c8-%012x\n", i)
			}
			continue
		}
		b.WriteString(strconv.FormatUint(175928847299117063+uint64(i)*4194304*7, 10))
		b.WriteByte('\n')
	}
	return b.String()
}

// runDecodeBench decodes input in one format to io.Discard, as bulk mode does.
func runDecodeBench(b testing.TB, format, input string) {
	ios, _, _, _ := cmdutil.Test()
	ios.In = strings.NewReader(input)
	ios.Out = io.Discard
	f := cmdutil.New(ios, cmdutil.BuildInfo{})
	f.Global.Output = format
	p, err := f.Printer(recordFormats)
	if err != nil {
		b.Fatal(err)
	}
	if err := RunDecode(context.Background(), f, p, &DecodeOptions{Layout: "discord", Now: testNow}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkDecodeFormats decodes the same stdin in every -o format within one iteration
// and reports each format's time as a multiple of -o json's in the same run (the
// target: every format within 2x of json). ns/op is the time of all formats together.
//
//	go test -run '^$' -bench DecodeFormats -benchtime 5x ./commands/id/
func BenchmarkDecodeFormats(b *testing.B) {
	for _, kind := range []string{"snowflake", "uuid"} {
		b.Run(kind, func(b *testing.B) {
			input := benchInput(20000, kind == "uuid")
			formats := []string{"json", "yaml", "jsonl", "csv", "table"}
			total := make(map[string]time.Duration)
			for b.Loop() {
				for _, format := range formats {
					start := time.Now()
					runDecodeBench(b, format, input)
					total[format] += time.Since(start)
				}
			}
			for _, format := range formats[1:] {
				b.ReportMetric(float64(total[format])/float64(total["json"]), format+"/json")
			}
			b.ReportMetric(float64(total["json"].Nanoseconds())/float64(b.N)/20000, "json-ns/id")
		})
	}
}
