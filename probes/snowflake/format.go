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
