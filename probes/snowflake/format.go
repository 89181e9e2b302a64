package snowflake

import "strconv"

// Output records. Both formats carry the same data:
//
//	CSV:   id,layout,timestamp,unix_ms,age,<non-time fields...>,warnings
//	       warnings are codes joined by ';'
//	JSONL: {"id":"<decimal string>","layout":"...","timestamp":"...","unix_ms":N,
//	        "age":"...","fields":{"<name>":N,...},"warnings":["code",...]}
//
// The ID is a string in JSON (JavaScript loses precision above 2^53). Field values are
// numbers, except fields wider than 53 bits, which are always strings. timestamp is RFC
// 3339 UTC with milliseconds; age is compact ("9y142d", "5h12m", "3s in the future" for the future).
// Warning codes: future, before_epoch, sign_bit, layout_expired, js_unsafe.

// AppendCSVHeader appends the CSV header line (with '\n').
func (d *Decoder) AppendCSVHeader(dst []byte) []byte {
	return append(append(dst, d.csvHeader...), '\n')
}

// AppendCSV appends one CSV record for v (with '\n'); it does not allocate when dst has room.
func (d *Decoder) AppendCSV(dst []byte, v *Decoded) []byte {
	dst = strconv.AppendUint(dst, v.ID, 10)
	dst = append(dst, ',')
	dst = append(dst, d.layoutCSV...)
	dst = append(dst, ',')
	dst = AppendTimestamp(dst, v.UnixMs)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, v.UnixMs, 10)
	dst = append(dst, ',')
	dst = AppendAge(dst, v.AgeMs)
	for i := 0; i < d.n; i++ {
		if i == d.timeIdx {
			continue
		}
		dst = append(dst, ',')
		dst = appendUint(dst, v.Values[i])
	}
	dst = append(dst, ',')
	dst = v.Warnings.appendCodes(dst, ';', false)
	return append(dst, '\n')
}

// AppendJSON appends one JSON object for v followed by '\n' (a JSONL record); it does not
// allocate when dst has room.
func (d *Decoder) AppendJSON(dst []byte, v *Decoded) []byte {
	dst = append(dst, `{"id":"`...)
	dst = strconv.AppendUint(dst, v.ID, 10)
	dst = append(dst, '"')
	dst = append(dst, d.layoutJS...)
	dst = append(dst, `,"timestamp":"`...)
	dst = AppendTimestamp(dst, v.UnixMs)
	dst = append(dst, `","unix_ms":`...)
	dst = strconv.AppendInt(dst, v.UnixMs, 10)
	dst = append(dst, `,"age":"`...)
	dst = AppendAge(dst, v.AgeMs)
	dst = append(dst, `","fields":`...)
	dst = d.AppendFieldsJSON(dst, v)
	dst = append(dst, `,"warnings":[`...)
	dst = v.Warnings.appendCodes(dst, ',', true)
	return append(dst, ']', '}', '\n')
}

// AppendFieldsJSON appends the non-time fields of v as one JSON object in layout order
// ({"worker":1,"process":0,"increment":7}), as AppendJSON writes them under "fields"; it
// does not allocate when dst has room.
func (d *Decoder) AppendFieldsJSON(dst []byte, v *Decoded) []byte {
	dst = append(dst, '{')
	first := true
	for i := 0; i < d.n; i++ {
		if i == d.timeIdx {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, d.jsonKeys[i]...)
		if d.bigField[i] {
			dst = append(dst, '"')
			dst = strconv.AppendUint(dst, v.Values[i], 10)
			dst = append(dst, '"')
		} else {
			dst = appendUint(dst, v.Values[i])
		}
	}
	return append(dst, '}')
}

// appendUint is strconv.AppendUint with a shortcut for the small values most fields hold.
func appendUint(dst []byte, v uint64) []byte {
	switch {
	case v < 10:
		return append(dst, byte('0'+v))
	case v < 100:
		return append(dst, byte('0'+v/10), byte('0'+v%10))
	}
	return strconv.AppendUint(dst, v, 10)
}

// YAMLScalar makes the string just appended at dst[start:] a YAML scalar: it leaves it
// plain, or quotes it where YAML would read it as something other than a string (the
// printer supplies it, so every YAML that dsctl writes quotes alike).
type YAMLScalar func(dst []byte, start int) []byte

// YAMLWriter writes decoded IDs as YAML list items. It quotes the layout's names once,
// so each record quotes only its timestamp and age.
type YAMLWriter struct {
	d      *Decoder
	scalar YAMLScalar
	layout []byte
	keys   [MaxFields][]byte
	codes  [len(warningCodes)][]byte
}

// NewYAMLWriter prepares YAML records of d's IDs, quoting strings with scalar.
func (d *Decoder) NewYAMLWriter(scalar YAMLScalar) *YAMLWriter {
	w := &YAMLWriter{d: d, scalar: scalar}
	w.layout = scalar(append([]byte(nil), d.layoutCSV...), 0)
	for i := 0; i < d.n; i++ {
		w.keys[i] = scalar(append([]byte(nil), d.layoutKeys[i]...), 0)
	}
	for i, c := range warningCodes {
		w.codes[i] = scalar([]byte(c.code), 0)
	}
	return w
}

// AppendItem appends v as one item of a YAML list, the same record as AppendJSON laid
// out as dsctl's printer lays out a list:
//
//   - id: "175928847299117063"
//     layout: discord
//     ...
//
// It writes the YAML directly (no document is built), so YAML streams as fast as JSON.
func (w *YAMLWriter) AppendItem(dst []byte, v *Decoded) []byte {
	d := w.d
	dst = append(dst, `  - id: "`...)
	dst = strconv.AppendUint(dst, v.ID, 10)
	dst = append(dst, "\"\n    layout: "...)
	dst = append(dst, w.layout...)
	dst = append(dst, "\n    timestamp: "...)
	start := len(dst)
	dst = w.scalar(AppendTimestamp(dst, v.UnixMs), start)
	dst = append(dst, "\n    unix_ms: "...)
	dst = strconv.AppendInt(dst, v.UnixMs, 10)
	dst = append(dst, "\n    age: "...)
	start = len(dst)
	dst = w.scalar(AppendAge(dst, v.AgeMs), start)
	if d.n == 1 {
		dst = append(dst, "\n    fields: {}"...)
	} else {
		dst = append(dst, "\n    fields:"...)
	}
	for i := 0; i < d.n; i++ {
		if i == d.timeIdx {
			continue
		}
		dst = append(dst, "\n      "...)
		dst = append(dst, w.keys[i]...)
		dst = append(dst, ": "...)
		if d.bigField[i] {
			dst = append(dst, '"')
			dst = strconv.AppendUint(dst, v.Values[i], 10)
			dst = append(dst, '"')
		} else {
			dst = appendUint(dst, v.Values[i])
		}
	}
	if v.Warnings == 0 {
		return append(dst, "\n    warnings: []\n"...)
	}
	dst = append(dst, "\n    warnings:"...)
	for i, code := range w.codes {
		if v.Warnings&(1<<uint(i)) != 0 {
			dst = append(dst, "\n      - "...)
			dst = append(dst, code...)
		}
	}
	return append(dst, '\n')
}
