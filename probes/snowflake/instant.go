package snowflake

import (
	"math"
	"strconv"
	"time"
)

// Instant is a point in time in Unix milliseconds. It prints as RFC 3339 UTC with
// milliseconds ("2016-04-30T11:18:25.796Z"), also for years past 9999 where
// time.Time's JSON encoding gives up (a 48-bit millisecond field reaches year 10889).
type Instant int64

// Time converts to a time.Time in UTC.
func (i Instant) Time() time.Time { return time.UnixMilli(int64(i)).UTC() }

func (i Instant) String() string { return string(AppendTimestamp(nil, int64(i))) }

// MarshalText implements encoding.TextMarshaler (so JSON and YAML show the timestamp).
func (i Instant) MarshalText() ([]byte, error) { return AppendTimestamp(nil, int64(i)), nil }

// AppendTimestamp appends Unix milliseconds ms as RFC 3339 UTC with milliseconds. Years
// outside 0000..9999 are written with as many digits as they need and a sign if negative.
func AppendTimestamp(dst []byte, ms int64) []byte {
	var y, m, d, rem int64
	if ms >= 0 && ms < maxFastMs {
		// Years 1970..9999, the common case: unsigned arithmetic divides by constants faster.
		days := uint64(ms) / 86_400_000
		rem = int64(uint64(ms) - days*86_400_000)
		y, m, d = civilFromDaysFast(days)
		dst = append(dst, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10))
	} else {
		days := floorDiv(ms, 86_400_000)
		rem = ms - days*86_400_000 // 0 .. 86_399_999
		y, m, d = civilFromDays(days)
		if y >= 0 && y <= 9999 {
			dst = append(dst, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10))
		} else {
			dst = strconv.AppendInt(dst, y, 10)
		}
	}
	sec := rem / 1000
	msec := rem - sec*1000
	return append(dst, '-', byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+sec/36000), byte('0'+sec/3600%10), ':',
		byte('0'+sec/600%6), byte('0'+sec/60%10), ':',
		byte('0'+sec%60/10), byte('0'+sec%10), '.',
		byte('0'+msec/100), byte('0'+msec/10%10), byte('0'+msec%10), 'Z')
}

// maxFastMs is 10000-01-01T00:00:00Z in Unix ms.
const maxFastMs = 253402300800000

// civilFromDaysFast is civilFromDays for days >= 0.
func civilFromDaysFast(days uint64) (y, m, d int64) {
	z := days + 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int64(doy - (153*mp+2)/5 + 1)
	y = int64(yoe + era*400)
	if mp < 10 {
		m = int64(mp + 3)
	} else {
		m = int64(mp) - 9
		y++
	}
	return y, m, d
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// civilFromDays converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's algorithm; exact for the whole int64 millisecond range).
func civilFromDays(z int64) (y int64, m, d int64) {
	z += 719468
	era := z
	if era < 0 {
		era -= 146096
	}
	era /= 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

// AppendAge appends a compact age: "850ms", "42s", "12m3s", "5h12m", "45d3h", "9y142d"
// (a year is 365 days), rounded down to its two largest units. A negative age is a time
// in the future, and says so: "28y67d in the future" (a bare "-28y67d" read as noise).
func AppendAge(dst []byte, ms int64) []byte {
	if ms < 0 {
		if ms == math.MinInt64 {
			ms = math.MaxInt64
		} else {
			ms = -ms
		}
		return append(appendAge(dst, ms), " in the future"...)
	}
	return appendAge(dst, ms)
}

// appendAge is AppendAge for ms >= 0.
func appendAge(dst []byte, ms int64) []byte {
	const (
		sec  = 1000
		min  = 60 * sec
		hour = 60 * min
		day  = 24 * hour
		year = 365 * day
	)
	two := func(dst []byte, a int64, ua byte, b int64, ub byte) []byte {
		dst = strconv.AppendInt(dst, a, 10)
		dst = append(dst, ua)
		if b > 0 {
			dst = strconv.AppendInt(dst, b, 10)
			dst = append(dst, ub)
		}
		return dst
	}
	switch {
	case ms < sec:
		return append(strconv.AppendInt(dst, ms, 10), 'm', 's')
	case ms < min:
		return append(strconv.AppendInt(dst, ms/sec, 10), 's')
	case ms < hour:
		return two(dst, ms/min, 'm', ms%min/sec, 's')
	case ms < day:
		return two(dst, ms/hour, 'h', ms%hour/min, 'm')
	case ms < year:
		return two(dst, ms/day, 'd', ms%day/hour, 'h')
	default:
		return two(dst, ms/year, 'y', ms%year/day, 'd')
	}
}
